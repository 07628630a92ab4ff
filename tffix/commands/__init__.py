"""One module per subcommand: ``add_arguments(parser)`` and ``run(options) -> int``.

Commands glue probes, the pure core and rendering together; they never call ``sys.exit`` and
never catch ``TffixError`` (``tffix.cli.main`` does, in one place).
"""
