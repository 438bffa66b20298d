# Areas add their own make targets in files beside this one.
