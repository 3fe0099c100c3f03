from resdyn.cli import main
from resdyn.distributed import exit_process

exit_process(main())
