#ifndef LABCTL_CLIBSSH2_SHIM_H
#define LABCTL_CLIBSSH2_SHIM_H
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <netdb.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <string.h>

// libssh2's session/channel helpers are macros in the header; Swift cannot call macros.
static inline LIBSSH2_SESSION *labctl_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}
static inline LIBSSH2_CHANNEL *labctl_channel_open_session(LIBSSH2_SESSION *s) {
    return libssh2_channel_open_session(s);
}
static inline int labctl_channel_exec(LIBSSH2_CHANNEL *c, const char *command) {
    return libssh2_channel_exec(c, command);
}
static inline ssize_t labctl_channel_read(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read(c, buf, len);
}
static inline ssize_t labctl_channel_read_stderr(LIBSSH2_CHANNEL *c, char *buf, size_t len) {
    return libssh2_channel_read_stderr(c, buf, len);
}
static inline ssize_t labctl_channel_write(LIBSSH2_CHANNEL *c, const char *buf, size_t len) {
    return libssh2_channel_write(c, buf, len);
}
static inline int labctl_session_disconnect(LIBSSH2_SESSION *s, const char *why) {
    return libssh2_session_disconnect(s, why);
}
static inline int labctl_userauth_publickey_fromfile(LIBSSH2_SESSION *s, const char *user,
                                                    const char *privkey, const char *passphrase) {
    return libssh2_userauth_publickey_fromfile_ex(s, user, (unsigned int)strlen(user), NULL, privkey, passphrase);
}
static inline int labctl_userauth_password(LIBSSH2_SESSION *s, const char *user, const char *password) {
    return libssh2_userauth_password_ex(s, user, (unsigned int)strlen(user), password,
                                        (unsigned int)strlen(password), NULL);
}
// Hashed known_hosts names are HMAC-SHA1(salt, name); one call instead of EVP pointers in Swift.
static inline int labctl_hmac_sha1(const unsigned char *key, int key_len, const unsigned char *data,
                                   size_t data_len, unsigned char out[20]) {
    unsigned int out_len = 0;
    return HMAC(EVP_sha1(), key, key_len, data, data_len, out, &out_len) != NULL && out_len == 20;
}
// OpenSSL frees its locks in an atexit handler unless told not to; a libssh2 call still running
// on another thread at exit (a keepalive, a jump host's pump, a session closing) then takes a
// freed lock and the process dies with SIGSEGV after its work is done. Must run before any other
// OpenSSL call; the memory is the kernel's to reclaim at exit anyway.
static inline void labctl_crypto_init_without_atexit(void) {
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}
static inline int labctl_errno_eagain(void) { return LIBSSH2_ERROR_EAGAIN; }
#endif
