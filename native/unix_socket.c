/*
 * Linux unix-socket helpers that Node's `net` cannot express on every
 * supported Node version:
 *  - abstract addresses of an exact length (redpesk binders, systemd) or
 *    NUL-padded to the full sun_path (AGL binders): Node 20 can only do the
 *    padded form, Node 22 only the exact one;
 *  - SO_PEERCRED, so a server can tell which process called it;
 *  - unix datagrams (sd_notify): Node has no AF_UNIX SOCK_DGRAM at all.
 * Sockets are returned as plain fds that Node wraps with net.Socket({fd}) or
 * server.listen({fd}); all I/O stays in libuv.
 * Plain C with N-API so that Yocto cross-builds it with node-gyp (no Rust,
 * no C++ runtime).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *what, int err)
{
	char msg[160];
	char code[32];
	const char *name = NULL;
	switch (err) {
	case ECONNREFUSED: name = "ECONNREFUSED"; break;
	case ENOENT: name = "ENOENT"; break;
	case EADDRINUSE: name = "EADDRINUSE"; break;
	case EACCES: name = "EACCES"; break;
	case EAGAIN: name = "EAGAIN"; break;
	case EINVAL: name = "EINVAL"; break;
	case ENAMETOOLONG: name = "ENAMETOOLONG"; break;
	case ENOTDIR: name = "ENOTDIR"; break;
	case EPERM: name = "EPERM"; break;
	case EMSGSIZE: name = "EMSGSIZE"; break;
	case ENOBUFS: name = "ENOBUFS"; break;
	case EPROTOTYPE: name = "EPROTOTYPE"; break;
	default: break;
	}
	if (name == NULL) {
		snprintf(code, sizeof code, "ERRNO%d", err);
		name = code;
	}
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
	napi_throw_error(env, name, msg);
	return NULL;
}

/* Builds the abstract address for `name` (without its leading NUL).
 * Returns the address length to pass to bind/connect, or 0 if too long. */
static socklen_t abstract_addr(struct sockaddr_un *sun, const char *name,
			       size_t len, int padded)
{
	if (len + 1 > sizeof sun->sun_path)
		return 0;
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path + 1, name, len);
	if (padded)
		return (socklen_t)sizeof *sun;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

/* Reads args (name: string, padded: boolean) into the buffer. */
static int get_name_args(napi_env env, napi_callback_info info, char *name,
			 size_t cap, size_t *len, int *padded, int32_t *extra)
{
	size_t argc = 3;
	napi_value argv[3];
	bool b = false;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
		napi_throw_type_error(env, NULL, "expected (name, padded)");
		return -1;
	}
	if (napi_get_value_string_utf8(env, argv[0], name, cap, len) != napi_ok) {
		napi_throw_type_error(env, NULL, "name must be a string");
		return -1;
	}
	if (*len + 1 >= cap) {
		napi_throw_error(env, "ENAMETOOLONG", "abstract socket name too long");
		return -1;
	}
	napi_get_value_bool(env, argv[1], &b);
	*padded = b;
	if (extra != NULL) {
		*extra = 0;
		if (argc >= 3)
			napi_get_value_int32(env, argv[2], extra);
	}
	return 0;
}

/* connectAbstract(name, padded) -> fd of a connected non-blocking socket */
static napi_value connect_abstract(napi_env env, napi_callback_info info)
{
	char name[128];
	size_t len;
	int padded, fd, rc;
	struct sockaddr_un sun;
	socklen_t alen;
	napi_value result;

	if (get_name_args(env, info, name, sizeof name, &len, &padded, NULL) < 0)
		return NULL;
	alen = abstract_addr(&sun, name, len, padded);
	if (alen == 0)
		return throw_errno(env, "abstract address", ENAMETOOLONG);
	/* Non-blocking: a unix connect then completes at once or fails at once
	 * (no handshake, never EINPROGRESS). A blocking one would wait, freezing
	 * the whole event loop, whenever the listener's accept queue is full
	 * (a stalled binder): non-blocking, that is EAGAIN, as Node's net says. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return throw_errno(env, "socket", errno);
	do
		rc = connect(fd, (struct sockaddr *)&sun, alen);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		int err = errno;
		close(fd);
		return throw_errno(env, "connect", err);
	}
	napi_create_int32(env, fd, &result);
	return result;
}

/* listenAbstract(name, padded, backlog) -> fd of a listening socket */
static napi_value listen_abstract(napi_env env, napi_callback_info info)
{
	char name[128];
	size_t len;
	int padded, fd;
	int32_t backlog;
	struct sockaddr_un sun;
	socklen_t alen;
	napi_value result;

	if (get_name_args(env, info, name, sizeof name, &len, &padded, &backlog) < 0)
		return NULL;
	alen = abstract_addr(&sun, name, len, padded);
	if (alen == 0)
		return throw_errno(env, "abstract address", ENAMETOOLONG);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return throw_errno(env, "socket", errno);
	if (bind(fd, (struct sockaddr *)&sun, alen) < 0 ||
	    listen(fd, backlog > 0 ? backlog : 128) < 0) {
		int err = errno;
		close(fd);
		return throw_errno(env, "bind/listen", err);
	}
	napi_create_int32(env, fd, &result);
	return result;
}

/* peerCredentials(fd) -> {uid, gid, pid} of the process at the other end */
static napi_value peer_credentials(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1], obj, v;
	int32_t fd = -1;
	struct ucred cred;
	socklen_t clen = sizeof cred;

	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
		napi_throw_type_error(env, NULL, "expected (fd)");
		return NULL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
	napi_create_object(env, &obj);
	napi_create_uint32(env, cred.uid, &v);
	napi_set_named_property(env, obj, "uid", v);
	napi_create_uint32(env, cred.gid, &v);
	napi_set_named_property(env, obj, "gid", v);
	napi_create_int32(env, cred.pid, &v);
	napi_set_named_property(env, obj, "pid", v);
	return obj;
}

/*
 * Fills `sun` for a datagram destination written as NOTIFY_SOCKET writes it:
 * "/path" for a socket file, "@name" for an abstract socket. Returns the
 * address length, or 0 with errno set.
 *  - abstract: a leading NUL then the name, and the length covers exactly
 *    that (no trailing NUL, no padding): systemd binds its notify socket with
 *    the exact length, and a padded address would be another socket;
 *  - path: the path and its NUL when it fits, or all 108 bytes without a
 *    NUL, which the kernel also accepts.
 */
static socklen_t datagram_addr(struct sockaddr_un *sun, const char *addr, size_t len)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (len < 2 || memchr(addr, '\0', len) != NULL || (addr[0] != '/' && addr[0] != '@')) {
		errno = EINVAL;
		return 0;
	}
	if (len > sizeof sun->sun_path) {
		errno = ENAMETOOLONG;
		return 0;
	}
	if (addr[0] == '@') {
		/* sun_path[0] stays NUL; the name follows it */
		memcpy(sun->sun_path + 1, addr + 1, len - 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	memcpy(sun->sun_path, addr, len);
	if (len < sizeof sun->sun_path)
		len++; /* the NUL that memset left after the path */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

/*
 * sendDatagram(address, data) -> bytes sent. One datagram on a fresh
 * AF_UNIX SOCK_DGRAM socket, as sd_notify() does (no state to keep, nothing
 * inherited by children thanks to SOCK_CLOEXEC). MSG_DONTWAIT: a receiver
 * whose queue is full (a stalled service manager, net.unix.max_dgram_qlen)
 * yields EAGAIN instead of freezing the event loop; the caller decides
 * whether to retry. MSG_NOSIGNAL: no SIGPIPE, ever. Errors are thrown with
 * their errno name as `code`.
 */
static napi_value send_datagram(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2], result;
	/* sun_path and the string's NUL */
	char addr[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	size_t len = 0, dlen = 0;
	void *data = NULL;
	bool is_buffer = false;
	struct sockaddr_un sun;
	socklen_t alen;
	ssize_t sent;
	int fd, err;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
		napi_throw_type_error(env, NULL, "expected (address, data)");
		return NULL;
	}
	/* The full length first: a copy into a short buffer would be cut at a
	 * character boundary and silently name another socket. */
	if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "address must be a string");
		return NULL;
	}
	if (len >= sizeof addr)
		return throw_errno(env, "datagram address", ENAMETOOLONG);
	napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &len);
	if (napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer ||
	    napi_get_buffer_info(env, argv[1], &data, &dlen) != napi_ok) {
		napi_throw_type_error(env, NULL, "data must be a Buffer");
		return NULL;
	}
	alen = datagram_addr(&sun, addr, len);
	if (alen == 0)
		return throw_errno(env, "datagram address", errno);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return throw_errno(env, "socket", errno);
	do
		sent = sendto(fd, data, dlen, MSG_NOSIGNAL | MSG_DONTWAIT,
			      (struct sockaddr *)&sun, alen);
	while (sent < 0 && errno == EINTR);
	err = errno;
	close(fd);
	if (sent < 0)
		return throw_errno(env, "sendto", err);
	napi_create_int64(env, (int64_t)sent, &result);
	return result;
}

static napi_value init(napi_env env, napi_value exports)
{
	napi_property_descriptor props[] = {
		{ "connectAbstract", NULL, connect_abstract, NULL, NULL, NULL, napi_default, NULL },
		{ "listenAbstract", NULL, listen_abstract, NULL, NULL, NULL, napi_default, NULL },
		{ "peerCredentials", NULL, peer_credentials, NULL, NULL, NULL, napi_default, NULL },
		{ "sendDatagram", NULL, send_datagram, NULL, NULL, NULL, napi_default, NULL },
	};
	napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
