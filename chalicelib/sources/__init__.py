"""Sources: fetch and parse the feeds Banditore announces from, and recognise items already seen."""
