"""Running a colouring job: :mod:`.pipeline` (reader -> schedule -> colorizer -> temporal check ->
writer, and the recurrence), with one module per step around it: :mod:`.sizes` (working size),
:mod:`.chunks` (chunk plan, chunked encoding), :mod:`.shots` (no-reference keyframes), :mod:`.render`
(chroma at the output size), :mod:`.signature` (what a resumed run must match), :mod:`.results`
(what a run reports); :mod:`.resume` (the journal of finished chunks), :mod:`.distributed` (chunks
on a Ray cluster) and :mod:`.batch` (folders of films, one job each)."""
