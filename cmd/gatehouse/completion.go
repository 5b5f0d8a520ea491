package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"gatehouse"
)

const completionHelp = `usage: gatehouse completion bash|zsh|fish

Prints a script that completes gatehouse's commands, subcommands and flags in that shell:

  bash   source <(gatehouse completion bash)          (in ~/.bashrc)
  zsh    source <(gatehouse completion zsh)           (in ~/.zshrc, after compinit), or save it
         as _gatehouse in a directory of $fpath
  fish   gatehouse completion fish > ~/.config/fish/completions/gatehouse.fish

The script is made from the same command table the commands run from, and each command's
flags from the flag set it parses with, so it covers this binary exactly.
`

func runCompletion(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if wantsHelp(args) {
		fmt.Fprint(stdout, completionHelp)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, completionHelp)
		return 2
	}
	write := map[string]func(io.Writer, []cmdSpec){"bash": writeBash, "zsh": writeZsh, "fish": writeFish}[args[0]]
	if write == nil {
		fmt.Fprintf(stderr, "gatehouse: no completion for shell %q%s; want bash, zsh or fish\n", args[0],
			didYouMean(args[0], []string{"bash", "zsh", "fish"}, quoted))
		return 2
	}
	write(stdout, completionSpecs(ctx))
	return 0
}

// cmdSpec is what completion knows of one command or subcommand.
type cmdSpec struct {
	name, summary string
	subs          []cmdSpec
	flags         []flagSpec
	words         []string // positional words, such as completion's shells
}

type flagSpec struct {
	name, usage string
	value       bool     // takes a value
	choices     []string // the values, when there are few
}

// completionSpecs walks the command table, learning each command's flags
// by running it with -h against a flagProbe (see parseFlags), which stops
// it before it does anything.
func completionSpecs(ctx context.Context) []cmdSpec {
	noEnv := func(string) string { return "" }
	var out []cmdSpec
	for _, c := range commands() {
		spec := cmdSpec{name: c.name, summary: c.summary}
		switch {
		case c.group != nil:
			for _, sub := range c.group.cmds {
				// Twice: "approve --from-csv" parses with a flag set of its own.
				var flags []flagSpec
				for _, args := range [][]string{helpArgs(nil), helpArgs([]string{"--from-csv"})} {
					probe := &flagProbe{Writer: io.Discard}
					sub.run(ctx, args, deviceIO{stdout: io.Discard, stderr: probe, getenv: noEnv})
					flags = mergeFlags(flags, flagSpecs(probe.fs))
				}
				spec.subs = append(spec.subs, cmdSpec{name: sub.name, flags: flags})
			}
		case c.name == "completion":
			spec.words = []string{"bash", "zsh", "fish"}
		case c.name == "help":
			for _, c := range commands() {
				spec.words = append(spec.words, c.name)
			}
		default:
			probe := &flagProbe{Writer: io.Discard}
			c.run(ctx, []string{"-h"}, io.Discard, probe, noEnv)
			spec.flags = flagSpecs(probe.fs)
		}
		out = append(out, spec)
	}
	return out
}

// mergeFlags adds the flags of more that a lacks, keeping them sorted.
func mergeFlags(a, more []flagSpec) []flagSpec {
	for _, f := range more {
		if !slices.ContainsFunc(a, func(g flagSpec) bool { return g.name == f.name }) {
			a = append(a, f)
		}
	}
	slices.SortFunc(a, func(x, y flagSpec) int { return strings.Compare(x.name, y.name) })
	return a
}

// flagChoices are the values of flags that take one of a few words.
var flagChoices = map[string][]string{
	"o":          {"table", "json"},
	"log-level":  {"debug", "info", "warn", "error"},
	"log-format": {"text", "json"},
	"role":       {"admin", "operator", "viewer"},
}

func flagSpecs(fs *flag.FlagSet) []flagSpec {
	if fs == nil {
		return nil
	}
	var out []flagSpec
	fs.VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		spec := flagSpec{name: f.Name, usage: firstClause(f.Usage), value: !ok || !b.IsBoolFlag(), choices: flagChoices[f.Name]}
		if f.Name == "state" {
			for _, s := range gatehouse.States {
				spec.choices = append(spec.choices, string(s))
			}
		}
		out = append(out, spec)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// firstClause shortens a flag's usage for the shells that show one.
func firstClause(s string) string {
	s = strings.ReplaceAll(s, "`", "")
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 70 {
		s = string(r[:69]) + "…"
	}
	return s
}

func names(specs []cmdSpec) string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.name
	}
	return strings.Join(out, " ")
}

func (f flagSpec) dashed() string { return dashed(f.name) }

func flagWords(flags []flagSpec, valued bool) string {
	var out []string
	for _, f := range flags {
		if !valued || f.value {
			out = append(out, f.dashed())
		}
	}
	return strings.Join(out, " ")
}

// leaves calls fn for each command that takes flags: path is "serve" or
// "devices list".
func leaves(specs []cmdSpec, fn func(path []string, s cmdSpec)) {
	for _, c := range specs {
		if len(c.subs) == 0 {
			fn([]string{c.name}, c)
			continue
		}
		for _, s := range c.subs {
			fn([]string{c.name, s.name}, s)
		}
	}
}

func writeBash(w io.Writer, specs []cmdSpec) {
	fmt.Fprintf(w, `# bash completion for gatehouse; made by 'gatehouse completion bash' (version %s).
_gatehouse() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd=${COMP_WORDS[1]} sub=${COMP_WORDS[2]}
    local flags="" valued="" words=""
    COMPREPLY=()
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W %q -- "$cur"))
        return
    fi
    case $cmd in
`, version, names(specs))
	for _, c := range specs {
		fmt.Fprintf(w, "    %s)\n", c.name)
		if len(c.subs) > 0 {
			fmt.Fprintf(w, "        if (( COMP_CWORD == 2 )); then\n            COMPREPLY=($(compgen -W %q -- \"$cur\"))\n            return\n        fi\n", names(c.subs))
			fmt.Fprintf(w, "        case $sub in\n")
			for _, s := range c.subs {
				fmt.Fprintf(w, "        %s) flags=%q; valued=%q ;;\n", s.name, flagWords(s.flags, false), flagWords(s.flags, true))
			}
			fmt.Fprintf(w, "        *) return ;;\n        esac\n        ;;\n")
			continue
		}
		fmt.Fprintf(w, "        flags=%q; valued=%q; words=%q\n        ;;\n", flagWords(c.flags, false), flagWords(c.flags, true), strings.Join(c.words, " "))
	}
	fmt.Fprintf(w, `    *) return ;;
    esac
    if [[ " $valued " == *" $prev "* ]]; then
        case $prev in
`)
	for _, v := range choiceCases(specs) {
		fmt.Fprintf(w, "        %s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", v[0], v[1])
	}
	fmt.Fprint(w, `        *) COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n $words ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}
complete -o default -F _gatehouse gatehouse
`)
}

// choiceCases are the flags with known values, as "--flag" and the words.
func choiceCases(specs []cmdSpec) [][2]string {
	seen := map[string]string{}
	leaves(specs, func(_ []string, s cmdSpec) {
		for _, f := range s.flags {
			if len(f.choices) > 0 {
				seen[f.dashed()] = strings.Join(f.choices, " ")
			}
		}
	})
	var out [][2]string
	for k, v := range seen {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func writeZsh(w io.Writer, specs []cmdSpec) {
	fmt.Fprintf(w, `#compdef gatehouse
# zsh completion for gatehouse; made by 'gatehouse completion zsh' (version %s).
_gatehouse() {
    local cmd=${words[2]} sub=${words[3]} prev=${words[CURRENT-1]}
    local -a flags valued extra
    if (( CURRENT == 2 )); then
        compadd -- %s
        return
    fi
    case $cmd in
`, version, names(specs))
	for _, c := range specs {
		fmt.Fprintf(w, "    %s)\n", c.name)
		if len(c.subs) > 0 {
			fmt.Fprintf(w, "        if (( CURRENT == 3 )); then\n            compadd -- %s\n            return\n        fi\n", names(c.subs))
			fmt.Fprintf(w, "        case $sub in\n")
			for _, s := range c.subs {
				fmt.Fprintf(w, "        %s) flags=(%s); valued=(%s) ;;\n", s.name, flagWords(s.flags, false), flagWords(s.flags, true))
			}
			fmt.Fprintf(w, "        *) return ;;\n        esac\n        ;;\n")
			continue
		}
		fmt.Fprintf(w, "        flags=(%s); valued=(%s); extra=(%s)\n        ;;\n", flagWords(c.flags, false), flagWords(c.flags, true), strings.Join(c.words, " "))
	}
	fmt.Fprint(w, `    *) return ;;
    esac
    if (( ${valued[(Ie)$prev]} )); then
        case $prev in
`)
	for _, v := range choiceCases(specs) {
		fmt.Fprintf(w, "        %s) compadd -- %s ;;\n", v[0], v[1])
	}
	fmt.Fprint(w, `        *) _files ;;
        esac
        return
    fi
    if [[ $PREFIX == -* ]]; then
        compadd -- $flags
    elif (( ${#extra} )); then
        compadd -- $extra
    else
        _files
    fi
}
if [[ ${funcstack[1]} == _gatehouse ]]; then
    _gatehouse "$@"
else
    compdef _gatehouse gatehouse
fi
`)
}

// fishQuote quotes s for fish, where only \ and ' are special in '...'.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, specs []cmdSpec) {
	fmt.Fprintf(w, `# fish completion for gatehouse; made by 'gatehouse completion fish' (version %s).
# __gatehouse_at WORDS...: the words before the cursor are exactly gatehouse WORDS.
function __gatehouse_at
    set -l w (commandline -opc)
    set -e w[1]
    test "$w" = "$argv"
end
# __gatehouse_in WORDS...: the command line starts with gatehouse WORDS.
function __gatehouse_in
    set -l w (commandline -opc)
    set -e w[1]
    test (count $w) -ge (count $argv); or return 1
    for i in (seq (count $argv))
        test "$w[$i]" = "$argv[$i]"; or return 1
    end
end
complete -c gatehouse -f
`, version)
	for _, c := range specs {
		fmt.Fprintf(w, "complete -c gatehouse -n '__gatehouse_at' -a %s -d %s\n", c.name, fishQuote(c.summary))
		for _, s := range c.subs {
			fmt.Fprintf(w, "complete -c gatehouse -n '__gatehouse_at %s' -a %s\n", c.name, s.name)
		}
		for _, word := range c.words {
			fmt.Fprintf(w, "complete -c gatehouse -n '__gatehouse_at %s' -a %s\n", c.name, word)
		}
	}
	leaves(specs, func(path []string, s cmdSpec) {
		for _, f := range s.flags {
			opt := "-l " + f.name
			if len(f.name) == 1 {
				opt = "-o " + f.name
			}
			extra := ""
			switch {
			case len(f.choices) > 0:
				extra = " -x -a " + fishQuote(strings.Join(f.choices, " "))
			case f.value:
				extra = " -r -F"
			}
			fmt.Fprintf(w, "complete -c gatehouse -n '__gatehouse_in %s' %s%s -d %s\n", strings.Join(path, " "), opt, extra, fishQuote(f.usage))
		}
	})
}
