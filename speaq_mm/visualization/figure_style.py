"""The look shared by the matplotlib figures of the analysis tools (tools/analysis).

Panels are white on a mid-grey figure. The grey is darker than anything a white panel holds in grey (grid
lines, faint curves), so a figure's panels can be told from its background, which the tests use to count
them.
"""
FIGURE_BACKGROUND_RGB = (207, 207, 207)
FIGURE_BACKGROUND = '#{:02x}{:02x}{:02x}'.format(*FIGURE_BACKGROUND_RGB)
PANEL_BACKGROUND = 'white'
