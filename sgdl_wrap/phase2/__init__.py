"""Phase II: self-guided learning (SGDL Sec. 3.2); :mod:`.pipeline` is the step."""
