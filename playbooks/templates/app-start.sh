#!/bin/sh
# Written by labctl (playbooks/templates/app-start.sh): starts the app as the course does.
# A shell template (its name ends in .sh): labctl writes every value below as one quoted word.
# The Node this script was written for: when the inventory changes it, the script changes and
# deploy restarts the app onto the new Node.
wanted_node={{app.node.install}}-{{app.node.version}}-{{app.node.sha256}}
PATH=/opt/labctl/node-bin:$PATH
export PATH
major=$(node -p 'process.versions.node.split(".")[0]')
# react-scripts 4 needs the legacy OpenSSL provider on Node 17 and later; Node 16 and older
# refuse the option, so it is set only where it is needed.
if [ "$major" -ge 17 ]; then
    NODE_OPTIONS=--openssl-legacy-provider
    export NODE_OPTIONS
fi
cd {{app.directory}}/current || exit 1
exec npm run start
