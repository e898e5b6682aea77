"""The character: brain, voice, timeline, animator and renderer. Knows nothing of platforms."""
