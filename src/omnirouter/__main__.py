from omnirouter.cli import main

main()
