"""Docker log tags read back into container fields (streams.sources.receivers.dockertag)."""

from __future__ import annotations

import pytest

from streams.sources.receivers.dockertag import TagTemplate, TagTemplates

ID = "4f0c2f8b9a1e" + "0123456789abcdef" * 3 + "0123"
IMG = "sha256:" + "ab" * 32


def test_default_template_is_the_short_id() -> None:
    t = TagTemplate()
    assert t.match(ID[:12]) == {"id": ID[:12]}
    assert t.match(ID) is None
    assert t.match("web-1") is None


@pytest.mark.parametrize("image", ["nginx", "nginx:1.27", "registry.example:5000/shop/cart:1.4.2",
                                   "ghcr.io/org/app@sha256:" + "cd" * 32])
def test_the_recommended_template_whatever_the_image_name(image: str) -> None:
    t = TagTemplate("{{.ImageName}}/{{.Name}}/{{.ID}}")
    assert t.match(f"{image}/shop-cart_1.b/{ID[:12]}") == {
        "id": ID[:12], "name": "shop-cart_1.b", "image": {"name": image}}


def test_full_ids_image_ids_and_literal_text() -> None:
    t = TagTemplate("docker.{{.FullID}}.{{.ImageFullID}}")
    assert t.match(f"docker.{ID}.{IMG}") == {"id": ID, "image": {"id": IMG[7:]}}
    t = TagTemplate("{{ .DaemonName }}|{{.Name}}|{{.ImageID}}")
    assert t.match(f"docker|web|{IMG[7:19]}") == {"name": "web", "image": {"id": IMG[7:19]}}


def test_split_takes_a_tag_off_the_start_of_a_line() -> None:
    t = TagTemplate("{{.Name}}/{{.ID}}")
    assert t.split(f"web-1/{ID[:12]} GET / 200") == ({"id": ID[:12], "name": "web-1"}, "GET / 200")
    assert t.split("GET / 200") is None


@pytest.mark.parametrize("template", ["{{.Name | upper}}", "{{json .}}", "{{.Labels}}", "static"])
def test_templates_that_cannot_be_read_back_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="tag template"):
        TagTemplate(template)


def test_several_templates_are_tried_in_order() -> None:
    t = TagTemplates(["{{.ImageName}}/{{.Name}}/{{.ID}}", "{{.ID}}"])
    assert t.match(ID[:12]) == {"id": ID[:12]}
    assert t.match(f"nginx/web/{ID[:12]}") == {"id": ID[:12], "name": "web",
                                               "image": {"name": "nginx"}}
    assert t.match("other") is None
    assert TagTemplates().match(ID[:12]) == {"id": ID[:12]}
