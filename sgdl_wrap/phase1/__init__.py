"""Phase I: train plainly and find the memorization point (SGDL Sec. 3.1)."""
