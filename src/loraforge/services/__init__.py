"""Domain logic, free of HTTP: routes parse and authorise, then call these with keyword arguments."""
