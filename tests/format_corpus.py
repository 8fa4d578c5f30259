"""A format corpus: lines written from each format's specification or documentation, with the
ECS fields Logriver must give them (dotted paths). Shared by ``tests/unit/test_format_corpus.py``
and ``benchmarks/bench_formats.py`` (field recall per format).

Sources: RFC 3164 and RFC 5424 (sections 6 and 6.5 examples, SD escapes of 6.3.5), klog's and
glog's header layout (``Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg``, glog's ``Lyyyymmdd``),
nginx's ``log_format combined`` and ``main``, ingress-nginx's ``upstreaminfo``, nginx's error log
(``ngx_log_error_core``: ``, client: ..., server: ...``), Apache's common/combined LogFormat
and ErrorLogFormat (2.2 and 2.4), logfmt (brandur/kr), and key=value with other delimiters.
Times without a year are checked without ``@timestamp`` (the year depends on the run); a time
given to the microsecond keeps it.
"""

from __future__ import annotations

from typing import Any

CASES: list[tuple[str, str, dict[str, object]]] = [
    # -- syslog, RFC 5424 -------------------------------------------------------------------
    ("syslog", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8",
     {"@timestamp": "2003-10-11T22:14:15.003Z", "host.hostname": "mymachine.example.com",
      "log.syslog.appname": "su", "log.syslog.msgid": "ID47", "log.syslog.facility.name": "auth",
      "log.syslog.severity.name": "crit", "log.syslog.severity.code": 2, "log.level": "crit",
      "log.severity": "fatal", "log.syslog.version": 1,
      "message": "'su root' failed for lonvick on /dev/pts/8"}),
    ("syslog", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
     {"@timestamp": "2003-08-24T12:14:15.000003Z", "host.hostname": "192.0.2.1", "process.name": "myproc",
      "process.pid": 8710, "log.syslog.facility.name": "local4", "log.level": "notice",
      "log.syslog.priority": 165, "message": "%% It's time to make the do-nuts."}),
    ("syslog", '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry',
     {"log.syslog.structured_data.exampleSDID@32473.iut": "3",
      "log.syslog.structured_data.exampleSDID@32473.eventSource": "Application",
      "log.syslog.structured_data.exampleSDID@32473.eventID": "1011",
      "process.name": "evntslog", "event.code": "ID47", "message": "An application event log entry"}),
    ("syslog", '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"][examplePriority@32473 class="high"]',
     {"log.syslog.structured_data.exampleSDID@32473.iut": "3",
      "log.syslog.structured_data.examplePriority@32473.class": "high", "message": ""}),
    ("syslog", r'<78>1 2026-01-05T08:00:00Z cron-host crond 99 RUN [origin ip="10.1.2.3" software="cron \"v4\"" note="a\]b c\\d"] job done',
     {"log.syslog.structured_data.origin.ip": "10.1.2.3",
      "log.syslog.structured_data.origin.software": 'cron "v4"',
      "log.syslog.structured_data.origin.note": "a]b c\\d", "log.syslog.facility.name": "cron",
      "log.syslog.severity.name": "info", "message": "job done"}),
    ("syslog", "<11>1 2026-02-03T04:05:06.789+01:00 web-1 nginx - - - upstream timed out",
     {"@timestamp": "2026-02-03T03:05:06.789Z", "log.level": "err", "log.severity": "error",
      "event.severity": 3, "log.syslog.facility.name": "user"}),
    # -- syslog, RFC 3164 and variants ------------------------------------------------------
    ("syslog", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
     {"host.hostname": "mymachine", "process.name": "su", "log.level": "crit",
      "log.syslog.facility.code": 4, "message": "'su root' failed for lonvick on /dev/pts/8"}),
    ("syslog", "<13>Feb  5 17:32:18 10.0.0.99 myapp[4242]: Use the BFG!",
     {"host.hostname": "10.0.0.99", "process.name": "myapp", "process.pid": 4242,
      "log.level": "notice", "log.severity": "info", "message": "Use the BFG!"}),
    ("syslog", "<142>Mar  1 06:25:43 haproxy[1999]: 10.0.0.1:51234 [01/Mar/2026:06:25:43.123] fe be/srv 0/0/1/2/3 200",
     {"process.name": "haproxy", "process.pid": 1999, "log.syslog.facility.name": "local1",
      "log.level": "info", "message": "10.0.0.1:51234 [01/Mar/2026:06:25:43.123] fe be/srv 0/0/1/2/3 200"}),
    ("syslog", "<189>Apr 20 2025 06:31:16.173 edge-router-2 %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed state to down",
     {"@timestamp": "2025-04-20T06:31:16.173Z", "host.hostname": "edge-router-2",
      "log.level": "notice", "log.syslog.facility.name": "local7",
      "message": "Line protocol on Interface Gi0/1, changed state to down"}),
    ("syslog", "Dec 24 18:00:01 buildbox CRON[3012]: (root) CMD (run-parts /etc/cron.hourly)",
     {"host.hostname": "buildbox", "process.name": "CRON", "process.pid": 3012,
      "message": "(root) CMD (run-parts /etc/cron.hourly)"}),
    ("syslog", "<30>Nov 25 10:00:00 registry.example.com:5000/shop/api:1.4/api-7f9/0c1d2e3f[812]: listening on :8080",
     {"process.name": "registry.example.com:5000/shop/api:1.4/api-7f9/0c1d2e3f", "process.pid": 812,
      "log.level": "info", "log.syslog.facility.name": "daemon", "message": "listening on :8080"}),
    ("syslog", '<27>Nov 25 10:00:00 node-3 app[7]: {"level":"error","msg":"db down","component":"store"}',
     {"host.hostname": "node-3", "process.name": "app", "log.level": "error", "message": "db down",
      "attributes.component": "store", "log.syslog.severity.name": "err"}),
    ("syslog", "2026-03-04T05:06:07.123456+00:00 fileserver smbd[881]: connection from 10.9.8.7 closed",
     {"@timestamp": "2026-03-04T05:06:07.123456Z", "host.hostname": "fileserver", "process.name": "smbd",
      "process.pid": 881, "message": "connection from 10.9.8.7 closed"}),
    # -- Linux authorization log (auth.log / secure) ----------------------------------------
    ("auth", "Jan  7 09:15:02 bastion sshd[20211]: Accepted publickey for deploy from 198.51.100.23 port 52214 ssh2: ED25519 SHA256:abcdef",
     {"host.hostname": "bastion", "process.name": "sshd", "process.pid": 20211,
      "message": "Accepted publickey for deploy from 198.51.100.23 port 52214 ssh2: ED25519 SHA256:abcdef"}),
    ("auth", "Feb 11 23:59:59 db-2 sudo:   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart postgresql",
     {"host.hostname": "db-2", "process.name": "sudo",
      "message": "  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart postgresql"}),
    ("auth", "Mar 30 12:00:00 web-3 sshd(pam_unix)[31000]: authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.50",
     {"host.hostname": "web-3", "process.name": "sshd(pam_unix)", "process.pid": 31000}),
    ("auth", "Oct  2 01:02:03 gw systemd-logind[612]: New session 42 of user bob.",
     {"host.hostname": "gw", "process.name": "systemd-logind", "process.pid": 612,
      "message": "New session 42 of user bob."}),
    # -- klog / glog ------------------------------------------------------------------------
    ("klog", "I0630 12:34:56.789012    4242 controller.go:117] Starting workers",
     {"log.level": "I", "log.severity": "info", "process.pid": 4242,
      "log.origin.file.name": "controller.go", "log.origin.file.line": 117, "message": "Starting workers"}),
    ("klog", "E0702 01:00:00.000001       1 leaderelection.go:330] error retrieving resource lock: timeout",
     {"log.level": "E", "log.severity": "error", "event.severity": 3, "process.pid": 1,
      "log.origin.file.line": 330, "message": "error retrieving resource lock: timeout"}),
    ("klog", '  W0101 00:00:01.500000   77 reflector.go:424] "Failed to watch" err="context canceled" resource="pods"',
     {"log.level": "W", "log.severity": "warn", "message": "Failed to watch",
      "attributes.err": "context canceled", "attributes.resource": "pods"}),
    ("glog", "I20240229 23:59:59.999999 140245 server.cc:88] Listening on 0.0.0.0:9000",
     {"@timestamp": "2024-02-29T23:59:59.999999Z", "log.level": "I", "process.thread.id": 140245,
      "log.origin.file.name": "server.cc", "log.origin.file.line": 88, "message": "Listening on 0.0.0.0:9000"}),
    ("glog", "F20231105 03:04:05.000100     9 check.h:12] Check failed: size > 0",
     {"@timestamp": "2023-11-05T03:04:05.000100Z", "log.level": "F", "log.severity": "fatal",
      "process.thread.id": 9, "message": "Check failed: size > 0"}),
    ("glog", "W20250131 14:48:54.411655 15520 a/b/main.c++:9] disk nearly full",
     {"log.level": "W", "log.origin.file.name": "a/b/main.c++", "log.origin.file.line": 9}),
    # -- nginx access: combined, main, ingress upstreaminfo ---------------------------------
    ("nginx_combined", '203.0.113.7 - - [12/Mar/2026:10:11:12 +0100] "GET /index.html?lang=en HTTP/1.1" 200 5120 "https://example.org/start" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"',
     {"@timestamp": "2026-03-12T09:11:12.000Z", "source.ip": "203.0.113.7", "http.request.method": "GET",
      "url.original": "/index.html?lang=en", "url.path": "/index.html", "url.query": "lang=en",
      "http.version": "1.1", "http.response.status_code": 200, "http.response.body.bytes": 5120,
      "http.request.referrer": "https://example.org/start",
      "user_agent.original": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "log.severity": "info"}),
    ("nginx_combined", '198.51.100.2 - carol [01/Jan/2026:00:00:00 +0000] "POST /api/login HTTP/2.0" 401 0 "-" "curl/8.5.0"',
     {"user.name": "carol", "http.request.method": "POST", "http.response.status_code": 401,
      "http.response.body.bytes": 0, "user_agent.original": "curl/8.5.0", "log.severity": "warn"}),
    ("nginx_combined", '192.0.2.44 - - [05/Feb/2026:13:14:15 +0000] "GET /big.tar HTTP/1.1" 200 1048576 "-" "Wget/1.21" "3.42"',
     {"http.response.body.bytes": 1048576, "user_agent.original": "Wget/1.21", "attributes.gzip_ratio": "3.42"}),
    ("nginx_main", '10.244.1.5 - - [20/Jun/2026:08:30:00 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.30" "198.51.100.9, 10.0.0.2"',
     {"source.ip": "10.244.1.5", "user_agent.original": "kube-probe/1.30",
      "attributes.http_x_forwarded_for": "198.51.100.9, 10.0.0.2", "network.forwarded_ip": "198.51.100.9"}),
    ("nginx_main", '172.16.0.9 - - [20/Jun/2026:08:30:01 +0000] "GET /x HTTP/1.1" 502 157 "-" "Go-http-client/1.1" "-"',
     {"http.response.status_code": 502, "log.severity": "error", "event.severity": 3}),
    ("nginx_xff_client", '203.0.113.80, 10.1.0.4 - - [20/Jun/2026:08:31:00 +0000] "GET /shop HTTP/1.1" 200 77 "-" "Safari/17"',
     {"source.ip": "203.0.113.80", "source.address": "203.0.113.80, 10.1.0.4", "http.response.status_code": 200}),
    ("ingress_upstreaminfo", '192.0.2.10 - - [07/Jul/2026:07:07:07 +0000] "GET /api/items HTTP/1.1" 200 612 "https://shop.example/" "Mozilla/5.0" 389 0.012 [shop-api-8080] [] 10.244.2.17:8080 612 0.011 200 0f1e2d3c4b5a69788796a5b4c3d2e1f0',
     {"source.ip": "192.0.2.10", "http.request.bytes": 389, "event.duration": 12000000,
      "attributes.proxy_upstream_name": "shop-api-8080", "attributes.upstream_addr": "10.244.2.17:8080",
      "attributes.upstream_response_length": 612, "attributes.upstream_response_time": 0.011,
      "attributes.upstream_status": 200, "http.request.id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
      "user_agent.original": "Mozilla/5.0", "http.request.referrer": "https://shop.example/"}),
    ("ingress_upstreaminfo", '10.0.0.1 - admin [07/Jul/2026:07:07:08 +0000] "POST /upload HTTP/2.0" 504 160 "-" "k6/0.50" 1048900 60.001 [media-upload-80] [media-upload-canary-80] 10.244.3.3:80, 10.244.3.4:80 0, 0 30.000, 30.001 504, 504 aa11bb22cc33',
     {"user.name": "admin", "log.severity": "error", "attributes.proxy_alternative_upstream_name": "media-upload-canary-80",
      "attributes.upstream_addr": "10.244.3.3:80, 10.244.3.4:80", "attributes.upstream_status": "504, 504",
      "http.request.id": "aa11bb22cc33", "attributes.request_time": 60.001}),
    # -- nginx error ------------------------------------------------------------------------
    ("nginx_error", '2026/05/06 07:08:09 [error] 12#12: *3456 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.7, server: shop.example, request: "GET /cart HTTP/1.1", upstream: "http://10.244.0.9:8080/cart", host: "shop.example", referrer: "https://shop.example/"',
     {"@timestamp": "2026-05-06T07:08:09.000Z", "log.level": "error", "process.pid": 12,
      "process.thread.id": 12, "source.ip": "10.0.0.7", "server.address": "shop.example",
      "http.request.method": "GET", "url.original": "/cart", "attributes.upstream": "http://10.244.0.9:8080/cart",
      "url.domain": "shop.example", "http.request.referrer": "https://shop.example/",
      "message": "connect() failed (111: Connection refused) while connecting to upstream"}),
    ("nginx_error", "2026/05/06 07:08:10 [warn] 7#7: *9 an upstream response is buffered to a temporary file /var/cache/nginx/1/00/0000000001 while reading upstream, client: 192.0.2.3, server: _, request: \"GET /report.pdf HTTP/1.1\", upstream: \"http://127.0.0.1:9000/report.pdf\", host: \"files.example\"",
     {"log.level": "warn", "log.severity": "warn", "source.ip": "192.0.2.3", "server.address": "_",
      "url.domain": "files.example"}),
    ("nginx_error", '2026/05/06 07:08:11 [emerg] 1#1: bind() to 0.0.0.0:80 failed (98: Address already in use)',
     {"log.level": "emerg", "log.severity": "fatal", "event.severity": 0, "process.pid": 1,
      "message": "bind() to 0.0.0.0:80 failed (98: Address already in use)"}),
    ("nginx_error", '2026/05/06 07:08:12 [error] 30#30: *41 limiting requests, excess: 20.500 by zone "per_ip", client: 203.0.113.5, server: api.example, request: "POST /v1/orders HTTP/1.1", host: "api.example"',
     {"message": "limiting requests", "attributes.excess": 20.5, "attributes.zone": "per_ip",
      "source.ip": "203.0.113.5", "http.request.method": "POST"}),
    ("nginx_error", "2026/05/06 07:08:13 [notice] 1#1: signal process started",
     {"log.level": "notice", "log.severity": "info", "event.severity": 5, "message": "signal process started"}),
    # -- Apache access ----------------------------------------------------------------------
    ("apache_common", '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
     {"@timestamp": "2000-10-10T20:55:36.000Z", "source.ip": "127.0.0.1", "user.name": "frank",
      "http.request.method": "GET", "url.original": "/apache_pb.gif", "http.version": "1.0",
      "http.response.status_code": 200, "http.response.body.bytes": 2326}),
    ("apache_common", '2001:db8::7 identd-user bob [01/Dec/2025:23:00:00 +0000] "DELETE /items/9 HTTP/1.1" 204 -',
     {"source.ip": "2001:db8::7", "attributes.identity": "identd-user", "user.name": "bob",
      "http.request.method": "DELETE", "http.response.status_code": 204}),
    ("apache_combined", '192.0.2.200 - - [03/Mar/2026:03:03:03 +0000] "GET /wp-login.php HTTP/1.1" 404 196 "-" "python-requests/2.31.0"',
     {"http.response.status_code": 404, "user_agent.original": "python-requests/2.31.0", "log.severity": "warn"}),
    ("apache_combined", '10.1.1.1 - - [03/Mar/2026:03:03:04 +0000] "GET /q?s=a%20b HTTP/1.1" 200 10 "http://ref.example/?x=\\"y\\"" "UA \\"quoted\\" 1.0"',
     {"url.query": "s=a%20b", "http.request.referrer": 'http://ref.example/?x="y"',
      "user_agent.original": 'UA "quoted" 1.0'}),
    # -- Apache error -----------------------------------------------------------------------
    ("apache_error", "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:50234] File does not exist: /usr/local/apache2/htdocs/favicon.ico",
     {"@timestamp": "2011-09-09T10:42:29.902022Z", "log.level": "error", "log.logger": "core", "apache.error.module": "core",
      "process.pid": 35708, "process.thread.id": 4328636416, "source.ip": "72.15.99.187",
      "source.port": 50234, "message": "File does not exist: /usr/local/apache2/htdocs/favicon.ico"}),
    ("apache_error", "[Wed Jan 14 09:00:00.000001 2026] [ssl:emerg] [pid 2001] AH02572: Failed to configure at least one certificate and key",
     {"log.level": "emerg", "log.severity": "fatal", "event.severity": 0, "process.pid": 2001,
      "message": "AH02572: Failed to configure at least one certificate and key"}),
    ("apache_error", "[Wed Jan 14 09:00:01.5 2026] [mpm_event:alert] [pid 2002:tid 140000] AH00050: Child 2 returned a Fatal error",
     {"log.level": "alert", "event.severity": 1, "log.logger": "mpm_event"}),
    ("apache_error", "[Wed Jan 14 09:00:02 2026] [crit] [client 198.51.100.77] (13)Permission denied: /var/www/.htaccess pcfg_openfile: unable to check htaccess file",
     {"log.level": "crit", "log.severity": "fatal", "event.severity": 2, "source.ip": "198.51.100.77"}),
    ("apache_error", "[Thu Jan 15 11:22:33.444444 2026] [authz_core:error] [pid 77:tid 88] [client 203.0.113.9:6001] AH01630: client denied by server configuration: /srv/private, referer: https://portal.example/",
     {"http.request.referrer": "https://portal.example/", "source.port": 6001,
      "message": "AH01630: client denied by server configuration: /srv/private"}),
    ("apache_error", "[Thu May 12 08:28:57.652118 2011] [core:error] [pid 8777:tid 4326490112] (13)Permission denied: [client ::1:58619] AH00035: access to /index.html denied",
     {"source.ip": "::1", "source.port": 58619, "log.level": "error",
      "message": "(13)Permission denied: AH00035: access to /index.html denied"}),
    ("apache_error", "[Thu May 12 08:28:58.000001 2011] [authz_host:debug] [pid 8777:tid 1] [client 2001:db8::7] AH01753: access check of 'example.org' to /index.html failed",
     {"source.ip": "2001:db8::7", "log.level": "debug", "log.severity": "debug", "event.severity": 7}),
    # -- logfmt -----------------------------------------------------------------------------
    ("logfmt", 'at=info method=GET path=/ host=app.example fwd="198.51.100.1" dyno=web.1 connect=1ms service=5ms status=200 bytes=1548',
     {"http.request.method": "GET", "url.path": "/", "host.name": "app.example",
      "http.response.status_code": 200, "attributes.fwd": "198.51.100.1", "attributes.dyno": "web.1",
      "attributes.bytes": "1548"}),
    ("logfmt", 'time=2026-04-01T10:00:00Z level=warn msg="cache \\"hot\\" keys evicted" count=17 evicted',
     {"@timestamp": "2026-04-01T10:00:00.000Z", "log.level": "warn", "message": 'cache "hot" keys evicted',
      "attributes.count": "17", "attributes.evicted": True}),
    ("logfmt", 'lvl=eror t=2026-04-01T10:00:01Z logger=sqlstore err="connection reset" retry.count=3 db/name=orders x-request-id=ab12',
     {"log.level": "eror", "log.severity": "error", "log.logger": "sqlstore", "error.message": "connection reset",
      "attributes.retry.count": "3", "attributes.db/name": "orders", "attributes.x-request-id": "ab12"}),
    ("logfmt", 'level=debug msg="tags seen" tag=a tag=b tag=c',
     {"log.level": "debug", "attributes.tag": ["a", "b", "c"]}),
    # -- key=value with other delimiters ----------------------------------------------------
    ("key_value", 'user=alice, action="delete file", result=denied, audited',
     {"attributes.user": "alice", "attributes.action": "delete file", "attributes.result": "denied",
      "attributes.audited": True}),
    ("key_value", "env:prod,service:checkout,region:eu-west-1,canary",
     {"attributes.env": "prod", "service.name": "checkout", "attributes.region": "eu-west-1",
      "attributes.canary": True}),
    ("key_value", 'src:10.0.0.1;dst:10.0.0.2;proto:tcp;note:"a;b"',
     {"attributes.src": "10.0.0.1", "attributes.dst": "10.0.0.2", "attributes.proto": "tcp",
      "attributes.note": "a;b"}),
    ("key_value", 'level:warn component:scheduler msg:"queue is 90% full" shard:7',
     {"log.level": "warn", "message": "queue is 90% full", "attributes.component": "scheduler",
      "attributes.shard": "7"}),
    # -- plain text stays text --------------------------------------------------------------
    ("text", "Starting server with retries=3 on port 8080",
     {"log.format": "text", "message": "Starting server with retries=3 on port 8080"}),
    ("text", "user:bob logged in from 10.0.0.1",
     {"log.format": "text", "message": "user:bob logged in from 10.0.0.1"}),
    ("text", "Error: disk full, retrying in 5s",
     {"log.format": "text", "log.level": "Error", "log.severity": "error"}),
]


MISSING = object()  # what ``get_path`` returns for a path the event does not have


def get_path(event: dict[str, Any], path: str) -> Any:
    """``event`` at a dotted path; keys may themselves hold dots (``attributes.retry.count``,
    structured-data ids): the longest key present wins at each level."""
    node: Any = event
    parts = path.split(".")
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            return MISSING
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node, i = node[key], j
                break
        else:
            return MISSING
    return node
