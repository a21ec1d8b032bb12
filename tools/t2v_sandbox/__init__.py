"""Run template.yaml end to end on one machine (moto + emulator), and the t2v command."""
