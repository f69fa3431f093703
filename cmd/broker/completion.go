package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/template"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// topCommands are the commands run dispatches, as completion offers them.
var topCommands = []string{"serve", "sandbox", "simulate", "keys", "bench", "links", "events", "stats", "completion", "version", "help"}

// subCommands are the commands that take a subcommand, with theirs.
var subCommands = map[string][]string{
	"links":      {"list", "get", "refresh", "delete"},
	"keys":       {"status"},
	"completion": {"bash", "zsh"},
}

// completionCommand runs `broker completion bash|zsh`: it prints the shell's
// completion script.
func completionCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(stdout, completionUsage)
		return 0
	}
	if len(args) != 1 || !slices.Contains(subCommands["completion"], args[0]) {
		fmt.Fprint(stderr, "broker completion: want bash or zsh\n\n"+completionUsage)
		return 2
	}
	if err := completionScript(stdout, args[0]); err != nil {
		fmt.Fprintf(stderr, "broker completion: %v\n", err)
		return 1
	}
	return 0
}

const completionUsage = `Usage: broker completion bash|zsh

Prints the shell's completion script of broker: its commands, the operator
commands' flags, and the values of --state and --type.

  bash:  source <(broker completion bash)       (in ~/.bashrc)
  zsh:   source <(broker completion zsh)        (in ~/.zshrc, after compinit)
         or save it as _broker in a directory of $fpath
`

// completionData is what the scripts complete, from the commands themselves.
type completionData struct {
	// Top are the commands after "broker", with --help and --version.
	Top string
	// Sub maps a command to its subcommands, space-separated.
	Sub map[string]string
	// WithSub are the commands that take a subcommand, space-separated.
	WithSub string
	// Flags maps an operator command ("links list", "stats") to its flags.
	Flags map[string]string
	// BoolFlags are the flags that take no value.
	BoolFlags string
	// States and EventTypes are the values of --state and --type.
	States, EventTypes string
}

// newCompletionData reads the commands and the operator commands' flag sets.
func newCompletionData() completionData {
	d := completionData{
		Top:    strings.Join(append(slices.Clone(topCommands), "--help", "--version"), " "),
		Sub:    map[string]string{},
		Flags:  map[string]string{},
		States: "LINKED RELINK_REQUIRED",
	}
	for _, cmd := range slices.Sorted(maps.Keys(subCommands)) {
		d.Sub[cmd] = strings.Join(subCommands[cmd], " ")
		d.WithSub += " " + cmd
	}
	d.WithSub = strings.TrimSpace(d.WithSub)
	var types []string
	for _, t := range tokens.EventTypes {
		types = append(types, string(t))
	}
	d.EventTypes = strings.Join(types, " ")
	var bools []string
	for _, cmd := range operatorCommands {
		var c operatorConfig
		var state string
		fs := operatorFlagSet(cmd, &c, &state)
		var flags []string
		fs.VisitAll(func(f *flag.Flag) {
			flags = append(flags, "--"+f.Name)
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && !slices.Contains(bools, "--"+f.Name) {
				bools = append(bools, "--"+f.Name)
			}
		})
		d.Flags[cmd.name] = strings.Join(append(flags, "--help"), " ")
	}
	slices.Sort(bools)
	d.BoolFlags = strings.Join(bools, " ")
	return d
}

// completionScript writes the completion script of shell, "bash" or "zsh".
func completionScript(w io.Writer, shell string) error {
	t := bashCompletion
	if shell == "zsh" {
		t = zshCompletion
	}
	return t.Execute(w, newCompletionData())
}

// bashCompletion is the bash script; it needs no bash-completion package.
var bashCompletion = template.Must(template.New("bash").Parse(`# bash completion for broker. Load it with: source <(broker completion bash)
_broker() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local bool_flags=" {{.BoolFlags}} " with_sub=" {{.WithSub}} " cmd="" w i skip=0
    COMPREPLY=()
    # The command: the words before the cursor that are neither flags nor
    # flag values.
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((skip)); then skip=0; continue; fi
        case $w in
            -*=*) ;;
            -*) [[ $bool_flags == *" $w "* ]] || skip=1 ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=$w
                elif [[ $with_sub == *" $cmd "* ]]; then
                    cmd="$cmd $w"
                fi
                ;;
        esac
    done
    case $prev in
        --state) COMPREPLY=($(compgen -W "{{.States}}" -- "$cur")); return ;;
        --type) COMPREPLY=($(compgen -W "{{.EventTypes}}" -- "$cur")); return ;;
    esac
    if [[ -n $cmd && $prev == -* && $prev != *=* && $bool_flags != *" $prev "* ]]; then
        return # a flag's value
    fi
    local words=""
    case $cmd in
        "") words="{{.Top}}" ;;
{{- range $cmd, $subs := .Sub}}
        {{$cmd}}) words="{{$subs}}" ;;
{{- end}}
{{- range $cmd, $flags := .Flags}}
        "{{$cmd}}") words="{{$flags}}" ;;
{{- end}}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _broker broker
`))

// zshCompletion is the zsh script, sourced after compinit or autoloaded
// from $fpath as _broker.
var zshCompletion = template.Must(template.New("zsh").Parse(`#compdef broker
# zsh completion for broker. Load it with: source <(broker completion zsh)
# after compinit, or save it as _broker in a directory of $fpath.
_broker() {
    local -a bool_flags with_sub
    bool_flags=({{.BoolFlags}})
    with_sub=({{.WithSub}})
    local cmd="" w prev=${words[CURRENT-1]}
    integer i skip=0
    # The command: the words before the cursor that are neither flags nor
    # flag values.
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
        if ((skip)); then skip=0; continue; fi
        case $w in
            -*=*) ;;
            -*) ((${bool_flags[(Ie)$w]})) || skip=1 ;;
            *)
                if [[ -z $cmd ]]; then
                    cmd=$w
                elif ((${with_sub[(Ie)$cmd]})); then
                    cmd="$cmd $w"
                fi
                ;;
        esac
    done
    case $prev in
        --state) compadd -- {{.States}}; return ;;
        --type) compadd -- {{.EventTypes}}; return ;;
    esac
    if [[ -n $cmd && $prev == -* && $prev != *=* ]] && ((! ${bool_flags[(Ie)$prev]})); then
        return 1 # a flag's value
    fi
    case $cmd in
        "") compadd -- {{.Top}} ;;
{{- range $cmd, $subs := .Sub}}
        {{$cmd}}) compadd -- {{$subs}} ;;
{{- end}}
{{- range $cmd, $flags := .Flags}}
        "{{$cmd}}") compadd -- {{$flags}} ;;
{{- end}}
    esac
}
if [[ $funcstack[1] == _broker ]]; then
    _broker "$@"
else
    compdef _broker broker
fi
`))
