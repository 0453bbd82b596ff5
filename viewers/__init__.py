"""Qt + pyvista widgets that draw a Volume, a LabelMap and meshes. Never imports ui."""
