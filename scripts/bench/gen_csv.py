#!/usr/bin/env python3
"""Writes N rows in the original CSV upload format (fixed seed) to stdout."""
import random
import sys

n = int(sys.argv[1])
rng = random.Random(7)
protocols = ["HTTPS", "SSH", "FTP", "TOR"]
out = sys.stdout
out.write("LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n")
for _ in range(n):
    out.write(f"{rng.randrange(24)},{rng.randrange(1, 120)},{rng.randrange(100)},{rng.randrange(10)},"
              f"{rng.choice(protocols)},{rng.randrange(20, 200)}\n")
