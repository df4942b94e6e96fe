import FuzzDriver
import FuzzQuery

// parse_auditd on arbitrary text: record lines, grouping by event, hex-encoded fields.
let harness = QueryHarness("SELECT * FROM parse_auditd(filename=Data, accessor='data')")

runFuzzer(samples: {
    [
        """
        type=SYSCALL msg=audit(1364481363.243:24287): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 items=2 ppid=1 pid=3538 auid=1000 uid=0 comm="cat" exe="/bin/cat" key="k"
        type=EXECVE msg=audit(1364481363.243:24287): argc=2 a0="cat" a1=2F6574632F736861646F77
        type=CWD msg=audit(1364481363.243:24287): cwd="/root"
        type=PATH msg=audit(1364481363.243:24287): item=0 name="/etc/shadow" inode=1 mode=0100640 ouid=0
        type=PROCTITLE msg=audit(1364481363.243:24287): proctitle=636174002F6574632F736861646F77
        node=host type=USER_LOGIN msg=audit(1364481364.001:24288): pid=1 uid=0 msg='op=login acct="root" res=success'

        """,
    ].map { Array($0.utf8) }
}) { bytes in harness.run(bytes) }
