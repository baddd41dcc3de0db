from kiku.cli import app

app()
