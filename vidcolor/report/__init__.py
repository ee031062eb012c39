"""What a run leaves for the colorist: :mod:`.metrics` (PSNR, SSIM, warp error, CDC, colourfulness),
:mod:`.measure` (the per-frame and per-shot report from files, run stats, CSV/JSON) and :mod:`.html`
(the HTML page: plots, worst frames, keyframe suggestions; its Jinja2 template is
``template.html.j2`` beside it)."""
