"""Batches: the plan of items (:mod:`.plan`), one item (:mod:`.driver`), the manifest, the contact
sheet, and the items spread over a Ray cluster (:mod:`.ray_cluster`)."""
