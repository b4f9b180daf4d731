"""The rules of the banking engine: speech numbers, understanding, dialogue policy and phrasing."""
