"""What enters and leaves the process: decoding (:mod:`.reader`, videos and image sequences),
encoding (:mod:`.writer`, temp file renamed into place) and durable files (:mod:`.durable`: the one
atomic-write helper and the append-only journal file)."""
