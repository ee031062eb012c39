"""Running a colouring job: :mod:`.pipeline` (reader -> schedule -> colorizer -> temporal check ->
writer, chunk plan and the recurrence), :mod:`.resume` (the journal of finished chunks),
:mod:`.distributed` (chunks on a Ray cluster) and :mod:`.batch` (folders of films, one job each)."""
