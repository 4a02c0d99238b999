"""One module per `harness` subcommand.

Each module defines `register(subparsers)`, which adds its parser and sets
`func` to the function that runs it. Modules import only the standard library
at the top: torch and friends are imported inside the run functions, so that
`harness --help` stays instant.
"""
