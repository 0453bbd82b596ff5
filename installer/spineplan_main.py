"""Entry point of the frozen bundle: `spineplan ...`, exactly as the installed `app.cli:run`."""
import multiprocessing

if __name__ == "__main__":
    # `spineplan batch` starts its workers with 'spawn': in a frozen program each worker re-runs this
    # executable, and freeze_support() turns that run into the worker instead of a second CLI.
    multiprocessing.freeze_support()
    from app.cli import run

    run()
