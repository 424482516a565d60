# Sphinx configuration of the collection's docs site, built by scripts/docs-site: the pages antsibull-docs
# renders from the modules', filter's and roles' documentation, and the guides of docs/*.md (MyST Markdown).
import os

project = 'lightwhale.persistence'
copyright = 'lightwhale.persistence developers'
html_short_title = 'lightwhale.persistence'
html_title = 'lightwhale.persistence documentation'
extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext', 'myst_parser']
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'
html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
# Every page sits at the top of the site, so one relative link reaches the index from all of them; the theme's
# Ansible-wide side panel (an advertisement for Ansible's site) is left out.
html_theme_options = {
    'documentation_home_url': 'index.html',
    'show_extranav': False,
    'show_rtd_ethical_ads': False,
}
default_role = 'any'
# Every reference must resolve: the build runs with -W, so a broken one fails it.
nitpicky = True
# Ansible's own labels (return values, configuration, ansible.builtin modules), from a small inventory the
# build writes (the build runs offline); the links lead to the Ansible docs site.
intersphinx_mapping = {
    'ansible': ('https://docs.ansible.com/projects/ansible/latest/',
                os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ansible-objects.inv')),
}
# Headings up to ### get anchors, so the guides' links to sections (page.md#section) resolve.
myst_heading_anchors = 3
