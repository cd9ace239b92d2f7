"""The console's pages, one Sanic blueprint each, sharing a `console.Console`."""
