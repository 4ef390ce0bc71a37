"""Typer command functions, one module per stage; each calls one public library function."""
