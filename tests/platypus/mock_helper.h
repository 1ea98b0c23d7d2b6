/* mock_helper.h - for platypus's unit tests: start a strict mock of APNs or FCM
 * (tests/mock/apns_mock.py, fcm_mock.py) as a subprocess on free ports, talk to its control port,
 * stop it. Static functions, included by the test files that need them. */
#ifndef TEST_PP_MOCK_HELPER_H
#define TEST_PP_MOCK_HELPER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

extern char **environ;

/* Mocks still running when the process exits (a failed assertion skips mock_stop()) are killed,
 * or they would hold the test's stderr open. */
static pid_t mock_pids[16];

static void mock_kill_all(void)
{
	for (size_t i = 0; i < sizeof(mock_pids) / sizeof(mock_pids[0]); i++)
		if (mock_pids[i] > 0) {
			kill(mock_pids[i], SIGKILL);
			waitpid(mock_pids[i], NULL, 0);
		}
}

static void mock_track(pid_t pid, bool add)
{
	static bool registered;

	if (!registered) {
		atexit(mock_kill_all);
		registered = true;
	}
	for (size_t i = 0; i < sizeof(mock_pids) / sizeof(mock_pids[0]); i++)
		if (add ? mock_pids[i] == 0 : mock_pids[i] == pid) {
			mock_pids[i] = add ? pid : 0;
			return;
		}
}

struct mock {
	pid_t pid;
	int port, control;
};

/* Start tests/mock/<script> with extra args (NULL-terminated). 0 or -1. */
static __attribute__((unused)) int mock_start(struct mock *m, const char *script,
                                              const char *const *extra)
{
	const char *argv[32];
	char path[256], line[256];
	size_t n = 0, len = 0;
	int fds[2];
	posix_spawn_file_actions_t fa;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "tests/mock/%s", script);
	argv[n++] = "/usr/bin/python3";
	argv[n++] = path;
	argv[n++] = "--port";
	argv[n++] = "0";
	while (extra && *extra && n < 30)
		argv[n++] = *extra++;
	argv[n] = NULL;
	if (pipe(fds))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	if (posix_spawn(&m->pid, argv[0], &fa, NULL, (char *const *)argv, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	mock_track(m->pid, true);
	close(fds[1]);
	while (len < sizeof(line) - 1) {
		ssize_t r = read(fds[0], line + len, 1);

		if (r <= 0)
			break;
		if (line[len++] == '\n')
			break;
	}
	line[len] = 0;
	close(fds[0]);
	if (sscanf(line, "listening 127.0.0.1:%d control %d", &m->port, &m->control) != 2) {
		fprintf(stderr, "mock said: %s\n", line);
		kill(m->pid, SIGKILL);
		waitpid(m->pid, NULL, 0);
		return -1;
	}
	return 0;
}

static __attribute__((unused)) int mock_stop(struct mock *m)
{
	int st = 0;

	if (!m->pid)
		return 0;
	kill(m->pid, SIGTERM);
	waitpid(m->pid, &st, 0);
	mock_track(m->pid, false);
	m->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One control request (blocking, HTTP/1.1, Connection: close). Returns the parsed JSON answer
 * (caller decrefs) or NULL. */
static __attribute__((unused)) json_t *mock_ctl(const struct mock *m, const char *method,
                                                const char *path, const char *body)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char req[4096], *resp = NULL, *p;
	size_t len = 0, cap = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n;
	json_t *j = NULL;

	if (fd < 0)
		return NULL;
	sa.sin_port = htons((uint16_t)m->control);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		goto out;
	n = snprintf(req, sizeof(req),
	             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	             method, path, body ? strlen(body) : 0, body ? body : "");
	if (write(fd, req, (size_t)n) != n)
		goto out;
	for (;;) {
		ssize_t r;

		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			p = realloc(resp, cap);
			if (!p)
				goto out;
			resp = p;
		}
		r = read(fd, resp + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (!resp)
		goto out;
	resp[len] = 0;
	p = strstr(resp, "\r\n\r\n");
	if (p)
		j = json_loads(p + 4, 0, NULL);
out:
	free(resp);
	close(fd);
	return j;
}

/* POST and ignore the answer; returns 0 when the mock answered with JSON. */
static __attribute__((unused)) int mock_post(const struct mock *m, const char *path,
                                             const char *body)
{
	json_t *j = mock_ctl(m, "POST", path, body);

	if (!j)
		return -1;
	json_decref(j);
	return 0;
}

/* The request record, waiting for at least n answered entries (up to 5 s). Caller decrefs. */
static __attribute__((unused)) json_t *mock_requests(const struct mock *m, int n)
{
	char path[96];

	snprintf(path, sizeof(path), "/requests?wait=%d&answered=1&timeout=5", n);
	return mock_ctl(m, "GET", path, NULL);
}

/* The value of header name in a record entry, or NULL. */
static __attribute__((unused)) const char *rec_header(json_t *rec, const char *name)
{
	json_t *h = json_object_get(rec, "headers"), *pair;
	size_t i;

	json_array_foreach(h, i, pair)
	{
		if (!strcmp(json_string_value(json_array_get(pair, 0)), name))
			return json_string_value(json_array_get(pair, 1));
	}
	return NULL;
}

#endif
