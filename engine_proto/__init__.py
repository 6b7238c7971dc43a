"""Generated protocol code: do not edit; run `python scripts/gen_proto.py`."""
