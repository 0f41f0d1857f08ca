"""``lossbench advise``: from a data set to a recommended loss — profile, shortlist, equal-budget protocol,
recommendation (:mod:`.command` runs the steps in that order)."""
