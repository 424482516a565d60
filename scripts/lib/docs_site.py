"""The parts of the docs site build that are not antsibull-docs or Sphinx (run by scripts/docs-site).

    docs_site.py extra-docs COLLECTION      write COLLECTION/docs/docsite/extra-docs.yml: the guides' sections
    docs_site.py guides DOCS DEST           copy the guides DOCS/*.md to DEST/<name>.md, each with its label
    docs_site.py inventory FILE             write the Sphinx inventory of the Ansible docs labels the pages use
    docs_site.py check-links HTML           every link inside the built site reaches an existing page and anchor

The guides stay Markdown in docs/, where they read well on their own; the site renders them with MyST. Each gets
the label ansible_collections.lightwhale.persistence.docsite.<name> (dashes as underscores), which the modules'
SEE ALSO entries refer to.
"""

import html.parser
import os
import sys
import urllib.parse
import zlib

COLLECTION = "lightwhale.persistence"
LABEL_PREFIX = "ansible_collections.%s.docsite." % COLLECTION

# The index's sections; every docs/*.md must be in one (a new guide is not left out of the site unnoticed).
SECTIONS = [
    ("Guides", ["boot-sequence", "boot-hook", "image", "fleet", "snapshots", "disks-over-time", "runbook", "magic_disk",
                "lw_datafs", "lw_overlay", "persistence_info"]),
    ("Evidence", ["reliability", "vm-tests"]),
    ("Development", ["development", "releasing"]),
]

# Labels of the Ansible documentation that the generated pages refer to. Sphinx resolves them through this
# inventory (the build runs offline, so Ansible's own objects.inv cannot be fetched); the links go to the
# Ansible docs site. A new label is reported by the build (sphinx-build -W), then added here.
ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/latest/"
ANSIBLE_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values",
                             "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html#ansible-configuration-settings",
                                       "Ansible Configuration Settings"),
    "action_plugins": ("plugins/action.html#action-plugins", "Action plugins"),
}
ANSIBLE_BUILTIN_MODULES = ["reboot", "raw", "setup", "command", "shell", "copy", "template", "file",
                           "wait_for_connection", "set_stats", "ping"]


def label_of(name):
    return LABEL_PREFIX + name.replace("-", "_")


def guides_in(docs):
    return sorted(f[:-3] for f in os.listdir(docs) if f.endswith(".md"))


def write_extra_docs(collection):
    listed = [name for dummy, names in SECTIONS for name in names]
    missing = sorted(set(guides_in(os.path.join(collection, "docs"))) - set(listed))
    absent = sorted(set(listed) - set(guides_in(os.path.join(collection, "docs"))))
    if missing or absent:
        sys.exit("docs-site: docs/*.md not in the index's sections: %s; listed but missing: %s" % (missing, absent))
    lines = ["---", "sections:"]
    for title, names in SECTIONS:
        lines.append("  - title: %s" % title)
        lines.append("    toctree:")
        # antsibull-docs puts "docsite/" in front; the guides sit beside the other pages (see copy_guides).
        lines.extend("      - ../%s" % name for name in names)
    path = os.path.join(collection, "docs", "docsite", "extra-docs.yml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def copy_guides(docs, dest):
    os.makedirs(dest, exist_ok=True)
    for name in guides_in(docs):
        with open(os.path.join(docs, name + ".md"), encoding="utf-8") as fh:
            text = fh.read()
        with open(os.path.join(dest, name + ".md"), "w", encoding="utf-8") as fh:
            fh.write("(%s)=\n\n%s" % (label_of(name), text))


def write_inventory(path):
    entries = dict(ANSIBLE_LABELS)
    for module in ANSIBLE_BUILTIN_MODULES:
        label = "ansible_collections.ansible.builtin.%s_module" % module
        anchor = label.replace(".", "-").replace("_", "-")
        entries[label] = ("collections/ansible/builtin/%s_module.html#%s" % (module, anchor),
                          "ansible.builtin.%s module" % module)
    body = "".join("%s std:label -1 %s %s\n" % (label, uri, title) for label, (uri, title) in sorted(entries.items()))
    header = ("# Sphinx inventory version 2\n# Project: Ansible\n# Version: latest\n"
              "# The remainder of this file is compressed using zlib.\n")
    with open(path, "wb") as fh:
        fh.write(header.encode("utf-8") + zlib.compress(body.encode("utf-8")))


class _Page(html.parser.HTMLParser):
    """The ids a page defines and the links it makes."""

    def __init__(self):
        super().__init__()
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.links.append((tag, attrs[key]))


def check_links(root):
    pages = {}
    for dirpath, dummy, files in os.walk(root):
        for name in files:
            if name.endswith(".html"):
                path = os.path.join(dirpath, name)
                page = _Page()
                with open(path, encoding="utf-8") as fh:
                    page.feed(fh.read())
                pages[os.path.normpath(path)] = page
    broken, internal, external = [], 0, set()
    for path, page in sorted(pages.items()):
        for tag, link in page.links:
            parts = urllib.parse.urlsplit(link)
            if parts.scheme or parts.netloc:
                if parts.scheme in ("http", "https"):
                    external.add(parts.netloc)
                continue
            internal += 1
            if parts.path.startswith("/"):
                # Reaches the site only when it is served at a web root; a file:// reader gets nowhere.
                broken.append("%s: <%s> %s: a path from the web root" % (os.path.relpath(path, root), tag, link))
                continue
            target = path
            if parts.path:
                target = os.path.normpath(os.path.join(os.path.dirname(path), urllib.parse.unquote(parts.path)))
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            if not os.path.exists(target):
                broken.append("%s: <%s> %s: no such file" % (os.path.relpath(path, root), tag, link))
            elif parts.fragment and target in pages and urllib.parse.unquote(parts.fragment) not in pages[target].ids:
                broken.append("%s: <%s> %s: no such anchor" % (os.path.relpath(path, root), tag, link))
    # A link to a host that cannot exist is as broken as a missing page.
    broken.extend("a link to %s, a host that does not exist" % host for host in sorted(external)
                  if host.split(":")[0].endswith((".invalid", ".example", ".test", "localhost"))
                  or host.split(":")[0] in ("example.com", "example.org", "example.net"))
    for line in broken:
        print("docs-site: broken link: " + line)
    print("docs-site: %d pages, %d internal links, %d broken; links leave the site to: %s"
          % (len(pages), internal, len(broken), ", ".join(sorted(external)) or "nowhere"))
    return 1 if broken else 0


def main(argv):
    if len(argv) == 2 and argv[0] == "extra-docs":
        write_extra_docs(argv[1])
    elif len(argv) == 3 and argv[0] == "guides":
        copy_guides(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "inventory":
        write_inventory(argv[1])
    elif len(argv) == 2 and argv[0] == "check-links":
        return check_links(argv[1])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
