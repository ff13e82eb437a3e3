'use strict';
// A stand-in for wayshub-frontend (a create-react-app dev server on port 3000) for places
// with no npm registry: it needs nothing but node itself, and it says which server answered
// so that a reverse proxy's load balancing can be seen from outside.
// Written for old nodes too (Debian 12 ships 18, the course used 16): CommonJS, no fetch.

const http = require('http');
const os = require('os');

const port = parsePort(process.env.PORT, 3000);
// create-react-app listens on every interface by default; HOST narrows it like there.
const host = process.env.HOST || undefined;
// STANDIN_SERVER_NAME lets several copies on one machine (tests) tell themselves apart.
const hostname = process.env.STANDIN_SERVER_NAME || os.hostname();
// The release that answers (package.json's version), so that a rolling deploy and
// `labctl verify` can tell which servers run which version.
const version = String(require('./package.json').version || 'unknown');

function parsePort(text, fallback) {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error('wayshub stand-in: PORT must be a port number, got ' + JSON.stringify(text));
    process.exit(2);
  }
  return value;
}

function escapeHTML(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WaysHub</title>
<style>
  body { font-family: sans-serif; margin: 3rem auto; max-width: 40rem; color: #222; }
  h1 { color: #c00; }
  .server { font-family: monospace; background: #f3f3f3; padding: 0.2rem 0.4rem; }
</style>
</head>
<body>
<h1>WaysHub</h1>
<p>Watch, share and upload videos.</p>
<p>Served by <span class="server" id="served-by">${escapeHTML(hostname)}</span>, version <span class="server" id="app-version">${escapeHTML(version)}</span>.</p>
<p><small>This is labctl's stand-in for wayshub-frontend.</small></p>
</body>
</html>
`;

const server = http.createServer((request, response) => {
  response.setHeader('X-Served-By', hostname);
  response.setHeader('X-App-Version', version);
  const path = (request.url || '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { 'Content-Type': 'text/plain; charset=utf-8', 'Allow': 'GET, HEAD' });
    response.end('method not allowed\n');
    return;
  }
  if (path === '/health') {
    response.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    response.end('ok\n');
    return;
  }
  // Like the dev server of a single-page app: every path gets the page.
  response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  response.end(request.method === 'HEAD' ? undefined : page);
});

server.on('error', (error) => {
  console.error('wayshub stand-in: cannot listen on port ' + port + ': ' + error.message);
  process.exit(1);
});

server.listen(port, host, () => {
  const address = server.address();
  console.log('wayshub stand-in ' + version + ' on ' + hostname + ' listening on ' +
    (host || '*') + ':' + address.port + ' (node ' + process.version + ')');
});

// systemd stops the service with SIGTERM; npm passes it on. Close the listener and the idle
// keep-alive connections so the process ends at once rather than when they time out.
function shutDown(signal) {
  console.log('wayshub stand-in: ' + signal + ', stopping');
  server.close(() => process.exit(0));
  if (typeof server.closeIdleConnections === 'function') server.closeIdleConnections();
  // Connections that stay busy must not keep the unit in "deactivating" for long.
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutDown('SIGTERM'));
process.on('SIGINT', () => shutDown('SIGINT'));
