//! Host patrol (standalone gateway): load, CPU and IO wait, memory and swap, disks, listening
//! ports and top processes of the machine it runs on, read from /proc.
