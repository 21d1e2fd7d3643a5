"""HTML reports a person reads in a browser: ``report.html`` of a build folder, charts as inline SVG.

* :mod:`hwgen.report.charts`: matplotlib figures rendered to inline SVG text;
* :mod:`hwgen.report.html`: the jinja2 environment of ``templates/html/``;
* :mod:`hwgen.report.sources`: the JSON reports a page is made from;
* :mod:`hwgen.report.build_page`: ``report.html`` of one build folder;
* :mod:`hwgen.report.hooks`: the one call ``build`` / ``sim`` / ``synth`` make as they finish;
* :mod:`hwgen.report.command`: ``hwgen report BUILD_DIR``.
"""
