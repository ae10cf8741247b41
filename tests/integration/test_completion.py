"""bash completion for mailctl (completion/mailctl), run by the real
bash-completion framework: subcommands, their words, table types from
the built mailctl."""

import subprocess

from conftest import BUILD, ROOT

HARNESS = r'''
source /usr/share/bash-completion/bash_completion
source "$COMPLETION"
compopt() { :; }   # only valid inside a real completion; not what is tested
comp() {
    COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    _mailctl
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '; echo
}
comp mailctl qu
comp mailctl queue ""
comp mailctl --json co
comp mailctl config ""
comp mailctl config list --
comp mailctl table ""
comp mailctl table rebuild h
comp mailctl table query --aliases -
'''


def test_mailctl_completion():
    env = {"PATH": "%s:/usr/bin:/bin" % (BUILD / "src" / "mailctl"),
           "COMPLETION": str(ROOT / "completion" / "mailctl")}
    r = subprocess.run(["bash", "-c", HARNESS], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "queue ",
        "delete flush hold list release requeue show ",
        "config ",
        "get list set ",
        "--changed --defaults --json ",
        "query rebuild types ",
        "hash: ",
        "--aliases ",
    ], r.stdout
