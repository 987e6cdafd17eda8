"""Generated from proto/ykt/v1 by scripts/gen_proto.py. Do not edit."""
