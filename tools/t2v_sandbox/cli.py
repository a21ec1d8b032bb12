def main() -> None:  # placeholder until the emulator lands
    raise SystemExit("not yet")
