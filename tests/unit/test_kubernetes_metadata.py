from streams.sources.kubernetes import metadata_from_path

CID = "a" * 64


def test_containers_layout():
    m = metadata_from_path(f"/var/log/containers/web-7d9f8b6c5-x2x4z_shop_nginx-{CID}.log")
    assert m == {
        "kubernetes": {"namespace": "shop", "pod": {"name": "web-7d9f8b6c5-x2x4z"}, "container": {"name": "nginx"}},
        "container": {"id": CID},
    }


def test_pods_layout_including_rotated_files():
    for name in ("0.log", "3.log.20261125-101010"):
        m = metadata_from_path(f"/var/log/pods/kube-system_coredns-1_0f1e2d3c-aaaa/coredns/{name}")
        assert m["kubernetes"] == {
            "namespace": "kube-system",
            "pod": {"name": "coredns-1", "uid": "0f1e2d3c-aaaa"},
            "container": {"name": "coredns"},
        }


def test_other_paths_have_no_metadata():
    assert metadata_from_path("/var/log/syslog") == {}
    assert metadata_from_path("/tmp/app.log") == {}
