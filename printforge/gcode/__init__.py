"""G-code on the lowest floor: one reader, one layer model, one time estimator, one gate.

`syntax` reads a line as firmware does, `reader` follows the modal state across lines,
`layers` defines a layer, `timing` estimates print time, `analysis` turns a file into figures,
`commands` knows what heater and protected commands do, and `gate` refuses what is unsafe.
Everything that reads G-code - the slicer stages, the previews, the printer drivers, the farm
node and the simulators - reads it through these modules. They import only `models` and
`runtime`.
"""
