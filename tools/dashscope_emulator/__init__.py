"""A faithful local emulator of DashScope's PixVerse text-to-video API."""
