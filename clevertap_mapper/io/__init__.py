"""Reading inputs and writing outputs: the I/O edge around the pure mapping core."""
