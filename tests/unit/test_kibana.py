"""Kibana saved objects, offline: valid NDJSON, every reference resolves, every field a panel
uses exists in the index templates, and the import client speaks Kibana's protocol."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from schemas import cli, kibana
from schemas import elasticsearch as es
from streams.cli import CliError

CAPS = {
    "core": es.Capabilities(prefix="logriver"),
    "full": es.Capabilities(prefix="logriver", field_types=frozenset(es.OPTIONAL_TYPES)),
}
AGGREGATABLE = {"keyword", "long", "short", "float", "double", "date", "ip", "boolean"}


def _objects(prefix: str = "logriver") -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in kibana.export_ndjson(prefix).splitlines()]


def test_export_is_valid_ndjson_with_unique_stable_ids() -> None:
    text = kibana.export_ndjson()
    assert text.endswith("\n") and "\n\n" not in text
    objects = _objects()
    ids = [(o["type"], o["id"]) for o in objects]
    assert len(ids) == len(set(ids))
    assert text == kibana.export_ndjson()  # deterministic
    types = [o["type"] for o in objects]
    assert types.count("index-pattern") == 4 and types.count("dashboard") == 1
    for obj in objects:
        assert set(obj) >= {"id", "type", "attributes", "references"}
        assert obj["attributes"]["title"]


def test_data_views_cover_every_kind() -> None:
    views = {o["attributes"]["title"]: o for o in _objects("lr") if o["type"] == "index-pattern"}
    assert set(views) == {es.index_pattern(k, "lr") for k in es.KINDS}
    assert views["lr-templates-*"]["attributes"]["timeFieldName"] == "first_seen"


def test_prefix_changes_ids_and_patterns() -> None:
    a, b = _objects("logriver"), _objects("lrtest-1")
    assert not {o["id"] for o in a} & {o["id"] for o in b}
    assert all(o["id"].startswith("lrtest-1-") for o in b)


def test_every_reference_resolves() -> None:
    objects = _objects()
    present = {(o["type"], o["id"]) for o in objects}
    seen_before: set[tuple[str, str]] = set()
    for obj in objects:
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, (obj["id"], ref)
            # referenced objects come first, so a partial import never dangles
            assert (ref["type"], ref["id"]) in seen_before, (obj["id"], ref)
        seen_before.add((obj["type"], obj["id"]))


def test_reference_names_match_their_users() -> None:
    for obj in _objects():
        names = {r["name"] for r in obj["references"]}
        attrs = obj["attributes"]
        if obj["type"] == "lens":
            layers = attrs["state"]["datasourceStates"]["indexpattern"]["layers"]
            assert names == {"indexpattern-datasource-current-indexpattern"} | {
                f"indexpattern-datasource-layer-{layer}" for layer in layers
            }
        elif obj["type"] == "search":
            source = orjson.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert names == {source["indexRefName"]}
        elif obj["type"] == "dashboard":
            panels = orjson.loads(attrs["panelsJSON"])
            assert names == {f"{p['panelIndex']}:{p['panelRefName']}" for p in panels}
            assert len({p["panelIndex"] for p in panels}) == len(panels)
            refs = {r["name"]: r["type"] for r in obj["references"]}
            assert all(refs[f"{p['panelIndex']}:{p['panelRefName']}"] == p["type"] for p in panels)


def test_dashboard_has_the_promised_panels() -> None:
    objects = {o["id"]: o for o in _objects()}
    dashboard = objects[kibana.dashboard_id()]
    titles = {objects[r["id"]]["attributes"]["title"] for r in dashboard["references"]}
    for wanted in (
        "Log volume by namespace",
        "Log volume by severity",
        "Error ratio",
        "Top templates",
        "New templates",
        "Anomaly scores",
        "Anomalies and explanations",
        "Logs",
    ):
        assert any(t.startswith(wanted) for t in titles), wanted
    for panel in orjson.loads(dashboard["attributes"]["panelsJSON"]):
        grid = panel["gridData"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 48


def test_lens_columns_are_consistent() -> None:
    for obj in _objects():
        if obj["type"] != "lens":
            continue
        state = obj["attributes"]["state"]
        ((layer_id, layer),) = state["datasourceStates"]["indexpattern"]["layers"].items()
        columns = layer["columns"]
        assert layer["columnOrder"] == list(columns)
        for col in columns.values():
            for ref in col.get("references", []):
                assert ref in columns, (obj["id"], ref)
            order_by = col.get("params", {}).get("orderBy", {})
            if order_by.get("type") == "column":
                assert order_by["columnId"] in columns
        vis = state["visualization"]
        if obj["attributes"]["visualizationType"] == "lnsXY":
            for layer_vis in vis["layers"]:
                assert layer_vis["layerId"] == layer_id
                used = [layer_vis["xAccessor"], *layer_vis["accessors"]]
                used += [layer_vis["splitAccessor"]] if "splitAccessor" in layer_vis else []
                assert all(c in columns for c in used), obj["id"]
        else:
            assert vis["layerId"] == layer_id
            assert all(c["columnId"] in columns for c in vis["columns"])


@pytest.mark.parametrize("caps_name", list(CAPS))
def test_every_field_a_panel_uses_exists_in_the_index_templates(caps_name: str) -> None:
    caps = CAPS[caps_name]
    objects = _objects()
    used = kibana.fields_by_data_view(objects)
    views = {o["id"]: o for o in objects if o["type"] == "index-pattern"}
    assert set(used) == set(views)
    for view_id, fields in used.items():
        kind = view_id.removeprefix("logriver-")
        mapped = es.mapped_fields(es.merged_mappings(kind, caps))
        missing = sorted(f for f in fields if f not in mapped)
        assert not missing, (
            f"{views[view_id]['attributes']['title']}: not in the mappings: {missing}"
        )


def test_lens_operations_fit_the_field_types() -> None:
    for obj in _objects():
        if obj["type"] != "lens":
            continue
        kind = obj["references"][0]["id"].removeprefix("logriver-")
        mapped = es.mapped_fields(es.merged_mappings(kind, CAPS["core"]))
        layer = next(
            iter(obj["attributes"]["state"]["datasourceStates"]["indexpattern"]["layers"].values())
        )
        for col in layer["columns"].values():
            field = col.get("sourceField")
            if field in (None, kibana.RECORDS):
                continue
            kind_of = mapped[field]
            assert kind_of in AGGREGATABLE, (obj["id"], field, kind_of)
            if col["operationType"] == "date_histogram":
                assert kind_of == "date"
            if col["operationType"] in ("sum", "average"):
                assert kind_of in ("long", "short", "float", "double")


# ------------------------------------------------------------------ import


class _Kibana(BaseHTTPRequestHandler):
    status = 200
    answer: bytes = b'{"success": true, "successCount": 3, "errors": []}'
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_kibana() -> Iterator[tuple[str, type[_Kibana]]]:
    handler = type("Handler", (_Kibana,), {"requests": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", handler
    finally:
        server.shutdown()
        server.server_close()


def test_import_posts_multipart_with_xsrf_and_overwrite(fake_kibana: tuple[str, Any]) -> None:
    url, handler = fake_kibana
    ndjson = kibana.export_ndjson("lr")
    answer = kibana.import_to_kibana(url, ndjson, api_key="abc")
    assert answer["success"] is True
    (req,) = handler.requests
    assert req["path"] == "/api/saved_objects/_import?overwrite=true"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["kbn-xsrf"] == "true"
    assert headers["authorization"] == "ApiKey abc"
    boundary = headers["content-type"].split("boundary=")[1]
    assert headers["content-type"].startswith("multipart/form-data")
    assert req["body"].startswith(f"--{boundary}\r\n".encode())
    assert b'name="file"; filename="logriver.ndjson"' in req["body"]
    assert ndjson.encode() in req["body"]
    assert req["body"].endswith(f"--{boundary}--\r\n".encode())


def test_import_basic_auth(fake_kibana: tuple[str, Any]) -> None:
    url, handler = fake_kibana
    kibana.import_to_kibana(url, "{}\n", username="elastic", password="secret")
    headers = {k.lower(): v for k, v in handler.requests[0]["headers"].items()}
    assert headers["authorization"] == "Basic ZWxhc3RpYzpzZWNyZXQ="


def test_import_http_error_is_clear(fake_kibana: tuple[str, Any]) -> None:
    url, handler = fake_kibana
    handler.status, handler.answer = 400, b'{"message": "bad file"}'
    with pytest.raises(kibana.KibanaError, match="answered HTTP 400: .*bad file"):
        kibana.import_to_kibana(url, "{}\n")


def test_import_unreachable_is_clear() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Kibana)
    port = server.server_port
    server.server_close()  # nothing listens there now
    with pytest.raises(kibana.KibanaError, match="unreachable"):
        kibana.import_to_kibana(f"http://127.0.0.1:{port}", "{}\n", timeout=2)


# ------------------------------------------------------------------ command line


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_export_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "kibana.ndjson"
    args = _parse(["kibana", "export", "-o", str(out), "--prefix", "lrx"])
    assert args.func(args) == 0
    assert out.read_text() == kibana.export_ndjson("lrx")


def test_cli_import_reports_failures(
    fake_kibana: tuple[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler = fake_kibana
    handler.answer = orjson.dumps(
        {
            "success": False,
            "successCount": 1,
            "errors": [{"type": "lens", "id": "x", "error": {"type": "missing_references"}}],
        }
    )
    args = _parse(["kibana", "import", "--url", url])
    assert args.func(args) == 1
    assert "missing_references" in capsys.readouterr().err
    missing = _parse(["kibana", "import", "--url", url, "--file", str(tmp_path / "none")])
    with pytest.raises(CliError, match="cannot read"):
        missing.func(missing)


def test_cli_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGRIVER_KIBANA_URL", raising=False)
    args = _parse(["kibana", "import"])
    with pytest.raises(CliError, match="--url"):
        args.func(args)
    args = _parse(["indices", "install", "--prefix", "Bad Prefix"])
    with pytest.raises(CliError, match="invalid prefix"):
        args.func(args)
    args = _parse(["indices", "retention", "--days", "3", "--url", "http://127.0.0.1:1"])
    with pytest.raises(CliError, match="unreachable at http://127.0.0.1:1"):
        args.func(args)


def test_cli_setup_installs_then_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(cli, "_indices_install", lambda args: calls.append("install") or 0)
    monkeypatch.setattr(cli, "_import", lambda url, args: calls.append(f"import {url}") or 0)
    args = _parse(["setup", "--kibana-url", "http://kibana:5601"])
    assert args.func(args) == 0
    assert calls == ["install", "import http://kibana:5601"]
    monkeypatch.delenv("LOGRIVER_KIBANA_URL", raising=False)
    args = _parse(["setup"])
    assert args.func(args) == 0
    assert calls[-1] == "install"


def test_template_panels_count_a_merged_template_once() -> None:
    """Events are counted by the id they were indexed with (it never changes), the catalog
    panels leave out merged ids (their counts are in their survivor's)."""
    lens = {o["id"].removeprefix("logriver-lens-"): o for o in _objects() if o["type"] == "lens"}

    def layer(slug: str) -> dict[str, Any]:
        return next(iter(lens[slug]["attributes"]["state"]["datasourceStates"]["indexpattern"]["layers"].values()))

    assert layer("top-templates")["columns"]["id"]["sourceField"] == "log.template_id"
    for slug in ("new-templates", "newest-templates", "template-catalog"):
        assert lens[slug]["attributes"]["state"]["query"]["query"] == "NOT alias_of:*"
    catalog = layer("template-catalog")["columns"]
    assert catalog["count"]["operationType"] == "sum" and catalog["count"]["sourceField"] == "count"
