"""Find the forms of the panel by reading its pages: a new section's forms are fuzzed without editing tests.

Every GET route is requested (URL variables filled from the security world) and every `<form>` is read with
its method, action (or `hx-post`/`hx-put`/...), encoding and fields (input, select and options, textarea).
"""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from flask import url_for
from werkzeug.exceptions import HTTPException

from tests.security import world as w

HX_METHODS = ("hx-post", "hx-put", "hx-patch", "hx-delete")


@dataclass
class Field:
    """One named control of a form."""

    name: str
    kind: str  # the input type, "select" or "textarea"
    value: str = ""
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    """A form as the browser (or htmx) would submit it."""

    method: str
    action: str
    page: str
    multipart: bool = False
    fields: list[Field] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        """Forms that post the same fields to the same place are one form."""
        return self.method, self.action, tuple(sorted(f.name for f in self.fields))

    @property
    def fuzzable(self) -> list[Field]:
        """The fields worth fuzzing (the CSRF token is left alone)."""
        return [f for f in self.fields if f.name != "csrf_token"]


class _Parser(HTMLParser):
    """Collects the forms of one page."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.select: Field | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            method, action = a.get("method", "get").upper(), a.get("action", "")
            for hx in HX_METHODS:
                if hx in a:
                    method, action = hx[3:].upper(), a[hx] or action
            self.current = Form(
                method=method,
                action=urljoin(self.page, action or self.page),
                page=self.page,
                multipart="multipart" in a.get("enctype", "")
                or a.get("hx-encoding", "") == "multipart/form-data",
            )
            self.forms.append(self.current)
        elif self.current is None or not a.get("name") or "disabled" in a:
            return
        elif tag == "input" and a.get("type", "text") not in ("submit", "button", "reset", "image"):
            self.current.fields.append(Field(a["name"], a.get("type", "text").lower(), a.get("value", "")))
            if a.get("type") == "file":
                self.current.multipart = True
        elif tag == "textarea":
            self.current.fields.append(Field(a["name"], "textarea"))
        elif tag == "select":
            self.select = Field(a["name"], "select")
            self.current.fields.append(self.select)
        if tag == "option" and self.select is not None:
            self.select.options.append(a.get("value", ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None


def parse_forms(html: str, page: str) -> list[Form]:
    """The forms of one page."""
    parser = _Parser(page)
    parser.feed(html)
    return parser.forms


def endpoint_of(app, form: Form) -> str | None:
    """The endpoint a form submits to (None when no route takes it)."""
    parts = urlsplit(form.action)
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _args = adapter.match(parts.path, method=form.method)
    except HTTPException:
        return None
    return endpoint


def page_urls(app, world) -> list[str]:
    """Every GET page of the panel with its URL variables filled from Alpha's objects."""
    urls = []
    with app.test_request_context():
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if (
                "GET" not in (rule.methods or ())
                or rule.endpoint == "static"
                or rule.endpoint.startswith("api.")
            ):
                continue
            try:
                urls.append(url_for(rule.endpoint, **w.fill(rule, world.alpha)))
            except KeyError:
                continue  # an unknown URL variable: the matrix reports it
    return urls


def discover(app, client, world) -> list[Form]:
    """Every distinct form found on the panel's pages (GET filter forms included)."""
    found: dict[tuple, Form] = {}
    for url in page_urls(app, world):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers, buffered=True)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            for form in parse_forms(response.get_data(as_text=True), url):
                found.setdefault(form.key, form)
    return list(found.values())
