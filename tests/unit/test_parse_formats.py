"""Format detection and field extraction on concrete lines of every supported format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.parse import Parser, parse_message

REF = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def parse(line: str, **kw):
    return parse_message(line, reference_time=REF) if not kw else Parser(**kw).parse(line, reference_time=REF)


def test_json_maps_common_keys_and_flattens():
    p = parse('{"level":"WARNING","ts":"2026-11-25T10:00:00.5+01:00","msg":"disk full",'
              '"logger":"db","caller":"store/disk.go:88","pid":7,"req":{"id":"r1","n":{"x":1}}}')
    assert p.format == "json"
    assert p.message == "disk full"
    assert p.level == "WARNING"  # as written (ECS); the pipeline adds the normalized severity
    assert p.timestamp == datetime(2026, 11, 25, 9, 0, 0, 500000, tzinfo=UTC)
    assert p.fields["log"] == {"logger": "db", "origin": {"file": {"name": "store/disk.go", "line": 88}}}
    assert p.fields["process"] == {"pid": 7}
    assert p.fields["attributes"] == {"req.id": "r1", "req.n.x": 1}
    assert p.errors == []


@pytest.mark.parametrize(("ts", "expected"), [
    (1764064800, datetime(2025, 11, 25, 10, 0, tzinfo=UTC)),
    (1764064800123, datetime(2025, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)),
    (1764064800123456789, datetime(2025, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)),
    (1764064800.25, datetime(2025, 11, 25, 10, 0, 0, 250000, tzinfo=UTC)),
])
def test_json_epoch_seconds_ms_ns(ts, expected):
    p = parse(f'{{"time": {ts}, "message": "x"}}')
    assert p.timestamp == expected


def test_json_depth_limit_and_attribute_limit():
    deep = '{"msg":"m","a":' + '{"b":' * 20 + "1" + "}" * 20 + "}"
    p = Parser(max_json_depth=4).parse(deep, reference_time=REF)
    assert p.format == "json" and "json_depth_limit" in p.errors
    wide = "{" + ",".join(f'"k{i}":{i}' for i in range(300)) + "}"
    p = Parser(max_attributes=10).parse(wide, reference_time=REF)
    assert len(p.fields["attributes"]) == 10 and "attributes_limit" in p.errors


def test_json_error_and_stack_fields():
    p = parse('{"level":"error","msg":"request failed","error":"EOF",'
              '"stacktrace":"main.handler()\\n\\t/app/main.go:12"}')
    assert p.fields["error"] == {"message": "EOF", "stack_trace": "main.handler()\n\t/app/main.go:12"}


def test_invalid_json_falls_back_to_text():
    p = parse('{"msg": "unterminated')
    assert p.format == "text" and "json_invalid" in p.errors


def test_logfmt_and_logrus():
    p = parse('ts=2026-11-25T10:00:00Z level=error msg="could not \\"connect\\"" component=api retries=3')
    assert (p.format, p.message, p.level) == ("logfmt", 'could not "connect"', "error")
    assert p.fields["attributes"] == {"component": "api", "retries": "3"}
    p = parse('time="2026-11-25T10:00:00+01:00" level=warning msg="slow request" duration=1.2s')
    assert (p.format, p.message, p.level) == ("logrus", "slow request", "warning")
    assert p.timestamp == datetime(2026, 11, 25, 9, tzinfo=UTC)


def test_klog_plain_and_structured():
    p = parse("E1125 10:00:00.123456   12345 reflector.go:138] k8s.io/client-go: failed to list *v1.Pod")
    assert (p.format, p.level) == ("klog", "E")
    assert p.timestamp == datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
    assert p.fields["process"] == {"pid": 12345, "thread": {"id": 12345}}
    assert p.fields["log"]["origin"]["file"] == {"name": "reflector.go", "line": 138}
    p = parse('I1125 10:00:01.000001       1 kubelet.go:2453] "SyncLoop ADD" source="api" '
              'pods=["kube-system/coredns-5d78c9869d-abcde"]')
    assert p.message == "SyncLoop ADD"
    assert p.fields["attributes"]["source"] == "api"


def test_klog_without_year_in_january_is_last_year_when_ref_is_january():
    p = Parser().parse("W1231 23:59:59.000000 1 a.go:1] late", reference_time=datetime(2027, 1, 1, tzinfo=UTC))
    assert p.timestamp == datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_nginx_ingress_access_log_with_request_time():
    p = parse('192.168.1.10 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/items?page=2 HTTP/1.1" 200 '
              '1534 "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)" 512 0.004 '
              '[default-api-80] [] 10.244.1.7:8080 1534 0.004 200 5f1c2a')
    assert p.format == "nginx_access"
    f = p.fields
    assert f["http"]["request"]["method"] == "GET"
    assert f["http"]["response"] == {"status_code": 200, "body": {"bytes": 1534}}
    assert f["url"] == {"original": "/api/v1/items?page=2", "path": "/api/v1/items", "query": "page=2"}
    assert f["source"]["address"] == "192.168.1.10"
    assert f["user_agent"]["original"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert f["event"]["duration"] == 4_000_000
    assert p.timestamp == datetime(2026, 11, 25, 10, tzinfo=UTC)


def test_apache_common_access_log():
    p = parse('127.0.0.1 - frank [10/Oct/2026:13:55:36 -0700] "POST /login HTTP/1.0" 503 -')
    assert p.format == "apache_access" and (p.level, p.severity) == (None, "error")
    assert p.timestamp == datetime(2026, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert p.fields["user"] == {"name": "frank"}
    assert "body" not in p.fields["http"]["response"]


def test_apache_error_logs_new_and_old():
    p = parse("[Wed Nov 25 10:00:00.123456 2026] [proxy:error] [pid 4242:tid 140] "
              "[client 10.0.0.9:5151] AH00957: connect to backend failed")
    assert (p.format, p.level, p.message) == ("apache_error", "error", "AH00957: connect to backend failed")
    assert p.fields["process"] == {"pid": 4242, "thread": {"id": 140}}
    assert p.fields["source"] == {"address": "10.0.0.9", "ip": "10.0.0.9", "port": 5151}
    p = parse("[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties")
    assert (p.format, p.level) == ("apache_error", "notice")
    assert p.timestamp == datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC)


def test_nginx_error_log():
    p = parse('2026/11/25 10:00:00 [crit] 31#31: *7 connect() failed (111: Connection refused), '
              'client: 10.0.0.2, server: _, request: "GET / HTTP/1.1"')
    assert (p.format, p.level) == ("nginx_error", "crit")
    assert p.fields["process"]["pid"] == 31
    assert p.fields["source"] == {"address": "10.0.0.2", "ip": "10.0.0.2"}
    assert p.message == "connect() failed (111: Connection refused)"


def test_syslog_3164_with_and_without_pri():
    p = parse("<13>Nov 25 09:59:59 node-1 kubelet[812]: Started container nginx")
    assert (p.format, p.level, p.message) == ("syslog", "notice", "Started container nginx")
    assert p.fields["process"] == {"name": "kubelet", "pid": 812}
    assert p.timestamp == datetime(2026, 11, 25, 9, 59, 59, tzinfo=UTC)
    p = parse("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure")
    assert p.format == "syslog" and p.fields["host"] == {"hostname": "combo"}


def test_syslog_5424_with_structured_data():
    p = parse('<165>1 2026-11-25T10:00:00.003Z host.example app 4321 ID47 '
              '[exampleSDID@32473 iut="3" eventSource="App \\"x\\""] An application event')
    assert (p.format, p.level, p.message) == ("syslog", "notice", "An application event")
    assert p.fields["process"] == {"name": "app", "pid": 4321}
    assert p.fields["log"]["syslog"]["structured_data"]["exampleSDID@32473.eventSource"] == 'App "x"'
    assert p.fields["attributes"]["exampleSDID@32473.iut"] == "3"  # where earlier versions put it


def test_python_logging_layouts():
    p = parse("2026-11-25 10:00:00,123 - app.worker - WARNING - retrying in 5s")
    assert (p.format, p.level, p.message) == ("python", "WARNING", "retrying in 5s")
    assert p.fields["log"] == {"logger": "app.worker"}
    assert p.timestamp == datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)
    p = parse("CRITICAL:root:out of memory")
    assert (p.format, p.level, p.message) == ("python", "CRITICAL", "out of memory")


def test_logback_log4j_and_spring_boot():
    p = parse("2026-11-25 10:00:00.123 [http-nio-8080-exec-1] ERROR c.e.web.Controller - request failed")
    assert (p.format, p.level, p.message) == ("logback", "ERROR", "request failed")
    assert p.fields["process"] == {"thread": {"name": "http-nio-8080-exec-1"}}
    p = parse("2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created")
    assert (p.format, p.message) == ("logback", "Created")
    p = parse("2026-11-25T10:00:00.123Z  INFO 1 --- [demo] [           main] c.e.DemoApplication"
              "                      : Started DemoApplication in 2.1 seconds")
    assert (p.format, p.level) == ("logback", "INFO")
    assert p.fields["log"]["logger"] == "c.e.DemoApplication"
    assert p.message == "Started DemoApplication in 2.1 seconds"


def test_zap_console():
    p = parse('2026-11-25T10:00:00.123Z\tWARN\tcontroller\tcontroller/reconcile.go:91\t'
              'reconcile slow\t{"namespace":"prod","duration":"1.2s"}')
    assert (p.format, p.level, p.message) == ("zap", "WARN", "reconcile slow")
    assert p.fields["log"]["logger"] == "controller"
    assert p.fields["log"]["origin"]["file"] == {"name": "controller/reconcile.go", "line": 91}
    assert p.fields["attributes"] == {"namespace": "prod", "duration": "1.2s"}


def test_text_with_timestamp_and_level():
    p = parse("2026-11-25T10:00:00+02:00 [WARN] cache miss ratio high")
    assert (p.format, p.level, p.message) == ("text", "WARN", "cache miss ratio high")
    assert p.timestamp == datetime(2026, 11, 25, 8, tzinfo=UTC)
    p = parse("just words here")
    assert (p.format, p.level, p.timestamp, p.message) == ("text", None, None, "just words here")


def test_stack_traces():
    java = ("2026-11-25 10:00:00.123 [main] ERROR com.example.App - boom\n"
            "java.lang.IllegalStateException: bad state\n\tat com.example.App.run(App.java:10)\n"
            "\tat com.example.App.main(App.java:5)")
    p = parse(java)
    assert p.fields["error"]["type"] == "java.lang.IllegalStateException"
    assert p.fields["error"]["stack_trace"].startswith("java.lang.IllegalStateException")
    py = 'Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nKeyError: \'x\''
    assert parse(py).fields["error"]["type"] == "KeyError"
    go = "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:9"
    p = parse(go)
    assert p.fields["error"]["type"] == "panic"
    assert p.fields["error"]["stack_trace"].startswith("panic: runtime error")


def test_dissect_header_pattern():
    parser = Parser(dissect="%{date} %{time->} %{pid->} %{tid} %{level} %{component}: %{message}")
    p = parser.parse("03-17 16:13:38.811  1702  2395 D WindowManager: relayout done", reference_time=REF)
    assert (p.format, p.message, p.level) == ("dissect", "relayout done", "D")
    assert p.timestamp == datetime(2026, 3, 17, 16, 13, 38, 811000, tzinfo=UTC)
    assert p.fields["process"] == {"pid": 1702}
    assert p.fields["attributes"] == {"tid": "2395", "component": "WindowManager"}


def test_dissect_skip_append_and_mismatch():
    parser = Parser(dissect="%{?host} %{+msgpart} %{+msgpart} | %{message}")
    p = parser.parse("h1 a b | rest", reference_time=REF)
    assert p.fields["attributes"] == {"msgpart": "a b"} and p.message == "rest"
    p = parser.parse('{"msg": "not matching"}', reference_time=REF)
    assert "header_mismatch" in p.errors and p.format == "json"


def test_regex_header_pattern():
    parser = Parser(regex=r"(?P<timestamp>\S+) (?P<level>\w+) \[(?P<thread>[^\]]*)\] (?P<message>.*)")
    p = parser.parse("2026-11-25T10:00:00Z E [worker-1] queue full", reference_time=REF)
    assert (p.format, p.level, p.message) == ("regex", "E", "queue full")
    assert p.fields["process"] == {"thread": {"name": "worker-1"}}
    with pytest.raises(ValueError):
        Parser(regex=r"no groups")


def test_invalid_utf8_bytes_flagged():
    p = Parser().parse(b"caf\xe9 ok \xff", reference_time=REF)  # type: ignore[arg-type]
    assert "invalid_utf8" in p.errors and "\ufffd" in p.message


def test_java_stack_trace_with_two_space_frames_sets_error_fields():
    p = parse("java.lang.NullPointerException: id\n  at a.B.c(B.java:3)\n  at a.B.main(B.java:1)")
    assert p.fields["error"]["type"] == "java.lang.NullPointerException"
    assert p.fields["error"]["message"] == "id"
