"""``lensblur ui``: a local web page to drop a photo, click what should be sharp and drag the aperture."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from . import _args

EPILOG = """examples:
  lensblur ui                          # serves http://127.0.0.1:7860/ and opens it in the browser
  lensblur ui --port 8000 --no-browser
  lensblur ui --host 0.0.0.0           # serve the network too (anyone who reaches the port can use it)
  lensblur ui --generate-model sd-v1-4 # the generate tab (stage diffusion) with this Stable Diffusion model
  lensblur ui --generate-model CompVis/stable-diffusion-v1-4 --allow-download   # fetched into the cache first

The page renders with the same code as lensblur render, and shows the lensblur render command line that
reproduces the current settings. Uploads are limited to --max-upload-mb per file and --max-megapixels per photo;
everything the server writes stays in one temporary folder it removes on exit.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..ui import DEFAULT_MAX_MEGAPIXELS, DEFAULT_MAX_UPLOAD_MB

    p = _args.command(subparsers, "ui", help="a web page to refocus photos by clicking (local server)",
                      description=__doc__, epilog=EPILOG)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--no-browser", dest="browser", action="store_false", help="do not open the page in a browser")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB, metavar="MB",
                   help=f"largest file a page may upload (default {DEFAULT_MAX_UPLOAD_MB})")
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS, metavar="MP",
                   help=f"largest photo a page may drop (default {DEFAULT_MAX_MEGAPIXELS})")
    p.add_argument("--generate-model", metavar="PATH|ID",
                   help="the Stable Diffusion model of the page's generate tab (what lensblur generate --model takes: "
                        "a diffusers folder, a .safetensors/.ckpt file or a cached Hugging Face id); without it the "
                        "tab says how to configure one")
    p.add_argument("--allow-download", action="store_true",
                   help="fetch --generate-model, a Hugging Face id, into the Hugging Face cache before serving (the "
                        "page itself loads from the cache only)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from ..ui import serve

    if not 0 < args.port < 65536:
        raise InputError("--port", expected="a port from 1 to 65535", got=args.port, fix="e.g. --port 7860")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-megapixels", args.max_megapixels)):
        if not value > 0:
            raise InputError(flag, expected="a positive number", got=value, fix=f"e.g. {flag} 50")
    if args.allow_download and args.generate_model is None:
        raise InputError("--allow-download", expected="--generate-model, the Hugging Face id to fetch",
                         got="no --generate-model",
                         fix="add --generate-model CompVis/stable-diffusion-v1-4, or drop --allow-download")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"lensblur ui: serving on {args.host}: anyone who can reach this port can upload photos and read "
              "renders", file=sys.stderr)
    serve(host=args.host, port=args.port, open_browser=args.browser, max_upload_mb=args.max_upload_mb,
          max_megapixels=args.max_megapixels, log_level="info" if args.verbose else "warning",
          generate_model=args.generate_model, allow_download=args.allow_download)
    return 0
