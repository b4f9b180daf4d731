"""voicebot.v1: generated gRPC stubs. Made by scripts/gen_protos.py; do not edit."""
