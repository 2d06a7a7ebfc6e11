package eval

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// PTB tokenization as the coco-caption toolkit does it
// (tokenizer/ptbtokenizer.py): Stanford CoreNLP 3.4.1's PTBTokenizer run
// with -preserveLines -lowerCase over all the captions, one per line, then
// a filter that drops punctuation tokens.
//
// The lexer below re-implements the JFlex specification PTBLexer.flex with
// the 3.4.1 defaults: the rules are tried at each position, the longest
// match wins (trailing context counts towards the length, as in JFlex), and
// ties go to the earlier rule. Normalisations that are on: parentheses and
// brackets to -LRB- -RRB- -LSB- -RSB- -LCB- -RCB-, LaTeX quotes, PTB3
// ellipsis and dashes, spaces inside tokens to U+00A0, &amp; to &, currency
// and fractions, and splitting of assimilations (cannot, gonna, ...).
// americanize and the escaping of / and * are off.
//
// Every rule is written as a Go regular expression; %caseless applies to
// literal strings but not to character classes, so literals are wrapped in
// (?i:...) and classes are left alone. A fast path handles the common plain
// words without running the regular expressions; it gives the same tokens.

// PTBTokenize tokenizes one caption like the coco-caption pipeline does
// (the caption is the only line of the tokenizer's input) and returns the
// tokens joined by single spaces, lower-cased, with punctuation removed.
func PTBTokenize(caption string) string {
	return PTBTokenizeAll([]string{caption})[0]
}

// PTBTokenizeAll tokenizes captions as one run of the coco-caption pipeline
// does: the captions are consecutive lines of the tokenizer's input, in
// order. The result has one tokenized string per caption.
//
// Only the last line of a run can differ from a caption tokenized on its
// own line elsewhere (a few rules look at the character after a token, and
// the last line is followed by the end of the input rather than a newline),
// so to reproduce the toolkit exactly, pass the captions in the order
// PTBTokenizer.tokenize writes them: image by image in evaluation order,
// each image's captions in order, references and candidates in separate
// runs.
//
// The toolkit replaces "\n" in a caption by a space; a caption holding
// another line separator (\r, \v, \f, U+2028, U+2029) silently shifts every
// later caption by a line there. We replace those by spaces as well.
func PTBTokenizeAll(captions []string) []string {
	rules := ptbRules()
	// The tokenizer's input: the cleaned captions joined by newlines.
	var stream strings.Builder
	starts := make([]int, len(captions)+1)
	for i, c := range captions {
		if i > 0 {
			stream.WriteByte('\n')
		}
		starts[i] = stream.Len()
		stream.WriteString(cleanLine(c))
	}
	starts[len(captions)] = stream.Len() + 1
	in := stream.String()
	out := make([]string, len(captions))
	var toks []string
	var line strings.Builder
	for i := range captions {
		start, end := starts[i], starts[i+1]-1
		// The lexer sees the line, its newline and the following line
		// with its newline: enough for every trailing context of the
		// grammar. The last line is followed by the end of the input.
		winEnd := len(in)
		if i+2 < len(starts) {
			winEnd = min(len(in), starts[i+2])
		}
		toks = lexLine(rules, in[start:winEnd], end-start, toks[:0], true)
		out[i] = filterTokens(toks, &line)
	}
	return out
}

// cleanLine applies the wrapper's caption.replace('\n', ' ') and turns the
// other characters the lexer treats as line breaks into spaces.
func cleanLine(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\r', '\v', '\f', 0xe2: // 0xe2 starts U+2028 and U+2029
			clean = false
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\n', '\r', '\v', '\f', '\u2028', '\u2029':
			return ' '
		}
		return r
	}, s)
}

// ptbDropped reports whether a token is in the wrapper's PUNCTUATIONS list
// less "-LRB-", "-RRB-", "-LCB-" and "-RCB-": the wrapper compares the
// list with the lower-cased tokens, so those four never match. A token is
// dropped exactly when its lower-cased form is, since the others have no
// letter.
func ptbDropped(t string) bool {
	switch len(t) {
	case 1:
		switch t[0] {
		case '\'', '`', '.', '?', '!', ',', ':', '-', ';':
			return true
		}
	case 2:
		return t == "''" || t == "``" || t == "--"
	case 3:
		return t == "..."
	}
	return false
}

// filterTokens lower-cases the lexer's tokens (Java's -lowerCase) and does
// ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS)
// on the line they make; b is scratch space.
func filterTokens(toks []string, b *strings.Builder) string {
	b.Reset()
	n := 0
	for _, t := range toks {
		n += len(t) + 1
	}
	b.Grow(n)
	for i, t := range toks {
		if strings.IndexByte(t, ' ') >= 0 || (i == len(toks)-1 && lastIsPySpace(t)) {
			return filterTokensSlow(toks)
		}
		if ptbDropped(t) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		writeJavaLower(b, t)
	}
	return b.String()
}

func lastIsPySpace(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && pyIsSpace(r)
}

// filterTokensSlow is filterTokens step by step, for tokens holding spaces.
func filterTokensSlow(toks []string) string {
	lower := make([]string, len(toks))
	for i, t := range toks {
		lower[i] = javaLower(t)
	}
	line := strings.TrimRightFunc(strings.Join(lower, " "), pyIsSpace)
	var kept []string
	for _, p := range strings.Split(line, " ") {
		if !ptbDropped(p) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}

// ptbAction says what a rule does with its match.
type ptbAction uint8

const (
	actPlain       ptbAction = iota // the matched text
	actSkip                         // nothing (white space, ignorable characters)
	actAssim3                       // push back 3 characters (cannot -> can + not)
	actAssim2                       // push back 2 characters (gonna -> gon + na)
	actNBSP                         // spaces to U+00A0
	actDash                         // "--"
	actAmp                          // &amp; to &
	actSoftHyphen                   // soft hyphens removed
	actQuoteRight                   // LaTeX quotes, probably a right quote
	actQuoteLeft                    // LaTeX quotes, probably a left quote
	actFraction                     // ¼ ½ ¾ ⅓ spelled out
	actCurrency                     // ¢ £ € ... normalised
	actPeriodAgain                  // the text, then its final period again as the next token
	actPhone                        // spaces to U+00A0 and parentheses escaped
	actHyphens                      // 3 or 4 hyphens to "--"
	actEllipsis                     // "..."
	actFixed                        // a fixed replacement text
)

type ptbRule struct {
	re    *regexp.Regexp
	ctx   bool // the regexp is ^(text)(?:trailing context)
	act   ptbAction
	fixed string
	// ascii[c] says whether a match can start with ASCII byte c; other runes
	// are checked against the first instructions of the program.
	ascii [128]bool
	first []*syntax.Inst
}

func (r *ptbRule) canStart(c rune) bool {
	if c < utf8.RuneSelf {
		return r.ascii[c]
	}
	for _, in := range r.first {
		if in.MatchRune(c) {
			return true
		}
	}
	return false
}

// The macros of PTBLexer.flex, in Go syntax.
const (
	reSGML     = `<\/?[A-Za-z!?][^>\r\n]*>`
	reSPMDASH  = `&(?i:md|mdash|ndash);|[\x{0096}\x{0097}\x{2013}\x{2014}\x{2015}]`
	reSPAMP    = `&(?i:amp);`
	reSPPUNC   = `&(?:(?i:ht|tl|ur|lr|qc|ql|qr|odq|cdq)|#[0-9]+);`
	reSPLET    = `&[aeiouAEIOU](?i:acute|grave|uml);`
	reSPACE    = `[ \t\x{00A0}\x{2000}-\x{200A}\x{3000}]`
	reSPACES   = reSPACE + `+`
	reNEWLINE  = `(?:\r|\r?\n|\x{2028}|\x{2029}|\x{000B}|\x{000C}|\x{0085})`
	reSPACENL  = `(?:` + reSPACE + `|` + reNEWLINE + `)`
	reSENTEND  = reSPACENL + `(?:` + reSPACENL + `|[A-Z]|` + reSGML + `)`
	reDIGIT    = `\p{Nd}`
	reDATE     = reDIGIT + `{1,2}[\-\/]` + reDIGIT + `{1,2}[\-\/]` + reDIGIT + `{2,4}`
	reNUM      = `(?:` + reDIGIT + `+|` + reDIGIT + `*(?:[.:,\x{00AD}\x{066B}\x{066C}]` + reDIGIT + `+)+)`
	reNUMBER   = `[\-+]?` + reNUM
	reSUBSUP   = `[\x{207A}\x{207B}\x{208A}\x{208B}]?(?:[\x{2070}\x{00B9}\x{00B2}\x{00B3}\x{2074}-\x{2079}]+|[\x{2080}-\x{2089}]+)`
	reFRAC     = `(?:` + reDIGIT + `{1,4}[- \x{00A0}])?` + reDIGIT + `{1,4}(?:\\?\/|\x{2044})` + reDIGIT + `{1,4}`
	reFRAC2    = `[\x{00BC}\x{00BD}\x{00BE}\x{2153}-\x{215E}]`
	reDOLSIGN  = `(?:[A-Z]*\$|#)`
	reDOLSIGN2 = `[\x{00A2}\x{00A3}\x{00A4}\x{00A5}\x{0080}\x{20A0}\x{20AC}\x{060B}\x{0E3F}\x{20A4}\x{FFE0}\x{FFE1}\x{FFE5}\x{FFE6}]`
	reWORDCH   = `(?:\p{L}|` + reSPLET + `|[\x{00AD}\x{0237}-\x{024F}\x{02C2}-\x{02C5}\x{02D2}-\x{02DF}\x{02E5}-\x{02FF}\x{0300}-\x{036F}\x{0370}-\x{037D}\x{0384}\x{0385}\x{03CF}\x{03F6}\x{03FC}-\x{03FF}\x{0483}-\x{0487}\x{04CF}\x{04F6}-\x{04FF}\x{0510}-\x{0525}\x{055A}-\x{055F}\x{0591}-\x{05BD}\x{05BF}\x{05C1}\x{05C2}\x{05C4}\x{05C5}\x{05C7}\x{0615}-\x{061A}\x{063B}-\x{063F}\x{064B}-\x{065E}\x{0670}\x{06D6}-\x{06EF}\x{06FA}-\x{06FF}\x{070F}\x{0711}\x{0730}-\x{074F}\x{0750}-\x{077F}\x{07A6}-\x{07B1}\x{07CA}-\x{07F5}\x{07FA}\x{0900}-\x{0903}\x{093C}\x{093E}-\x{094E}\x{0951}-\x{0955}\x{0962}-\x{0963}\x{0981}-\x{0983}\x{09BC}-\x{09C4}\x{09C7}\x{09C8}\x{09CB}-\x{09CD}\x{09D7}\x{09E2}\x{09E3}\x{0A01}-\x{0A03}\x{0A3C}\x{0A3E}-\x{0A4F}\x{0A81}-\x{0A83}\x{0ABC}-\x{0ACF}\x{0B82}\x{0BBE}-\x{0BC2}\x{0BC6}-\x{0BC8}\x{0BCA}-\x{0BCD}\x{0C01}-\x{0C03}\x{0C3E}-\x{0C56}\x{0D3E}-\x{0D44}\x{0D46}-\x{0D48}\x{0E30}-\x{0E3A}\x{0E47}-\x{0E4E}\x{0EB1}-\x{0EBC}\x{0EC8}-\x{0ECD}])`
	reWORD     = reWORDCH + `+`
	reAPOS     = `(?:['\x{0092}\x{2019}]|&(?i:apos);)`
	reAPOSETC  = `(?:` + reAPOS + `|[\x{0091}\x{2018}\x{201B}])`
	reALNUM    = `[\p{L}\p{Nd}]`
	reHYPHEN   = `[-_\x{058A}\x{2010}\x{2011}]`
	reTHINGPRE = `(?:[dDoOlL]` + reAPOSETC + reALNUM + `)?`
	reTHING    = reTHINGPRE + reALNUM + `+(?:` + reHYPHEN + reTHINGPRE + reALNUM + `+)*`
	reTHINGA   = `[A-Z]+(?:(?:[+&]|` + reSPAMP + `)[A-Z]+)+`
	reTHING3   = `[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?\/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}`
	reACRO     = `(?:[A-Za-z](?:\.[A-Za-z])+|(?i:(?:canada|sino|korean|eu|japan|non)-u\.s|u\.s\.-(?:u\.k|u\.s\.s\.r)))`
	reHTHING   = `[A-Za-z0-9][A-Za-z0-9.,\x{00AD}]*(?:-(?:[A-Za-z0-9\x{00AD}]+|` + reACRO + `\.))+`
	reREDAUX   = reAPOS + `(?:[msdMSD]|(?i:re|ve|ll))`
	reSWORD    = `[A-Za-z\x{00AD}]*[A-MO-Za-mo-z]\x{00AD}*`
	reSREDAUX  = `(?i:n)` + reAPOSETC + `(?i:t)`
	reAPOWORD  = `(?:` + reAPOS + `(?i:n)` + reAPOS + `?|[lLdDjJ]` + reAPOS + `|(?i:dunkin|somethin|ol)` + reAPOS +
		`|` + reAPOS + `(?i:em)|[A-HJ-XZn]` + reAPOSETC + `\p{L}{2}\p{L}*|` + reAPOS + `[2-9]0(?i:s)|` + reAPOS + `(?i:till?)` +
		`|\p{L}\p{L}*[aeiouyAEIOUY]` + reAPOSETC + `[aeiouA-Z]\p{L}*|` + reAPOS + `(?i:cause)` +
		`|(?i:cont'd)\.?|(?i:'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l))`
	reAPOWORD2  = `(?i:y)` + reAPOS
	reFULLURL   = `(?i:https?)://[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},-]`
	reLIKELYURL = `(?:(?:(?i:www)\.(?:[^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4})|(?:(?:[^ \t\n\f\r"` + "`" + `'<>|.!?(){},-_$]+\.)+(?i:com|net|org|edu)))(?:\/[^ \t\n\f\r"<>|()]+[^ \t\n\f\r"<>|.!?(){},-])?`
	reEMAIL     = `[a-zA-Z0-9][^ \t\n\f\r"<>|()\x{00A0}]*@(?:[^ \t\n\f\r"<>|().\x{00A0}]+\.)*[^ \t\n\f\r"<>|().\x{00A0}]+`
	reTWITTER   = `@[a-zA-Z_][a-zA-Z_0-9]*|#` + reWORD
	reABMONTH   = `(?i:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)`
	reABDAYS    = `(?i:mon|tue|tues|wed|thu|thurs|fri)`
	reABSTATE   = `(?i:ala|ariz)|A(?i:rk)|(?i:calif|colo|conn|dak|del|fla|ga)|I(?i:ll)|(?i:ind|kans?|ky|la)|M(?i:ass)|(?i:md|mich|minn)|M(?i:iss)|(?i:mo|mont|neb|nev|okla)|O(?i:re)|(?i:pa|penn|tenn|tex|va|vt)|W(?i:ash)|(?i:wisc?|wyo)`
	reABTITLE   = `(?i:mr|mrs|ms)|M(?i:iss)|(?i:drs?|profs?|sens?|reps?|attys?|lt|col|gen|messrs|govs?|adm|rev|maj|sgt|cpl|pvt|mt|capt|ste?|ave|pres|lieut|hon|brig|co?mdr|pfc|spc|supts?|det)`
	reABPTIT    = `(?i:jr|sr|bros|(?:ed|ph)\.d|blvd|rd|esq)`
	reABCOMP    = `(?i:inc|cos?|corp|pp?tys?|ltd|plc|bancorp|dept|bhd|assn|univ|intl|sys)`
	reABCOMP2   = `(?i:invt|elec|natl)|(?i:m)[ft](?i:g)`
	reABNUM     = `(?i:nos?|prop|ph|tel|est|ext|sq|ft)`
	reABBREV1W  = `(?:` + reABMONTH + `|` + reABDAYS + `|` + reABSTATE + `|` + reABCOMP + `|` + reABNUM + `|` + reABPTIT + `|(?i:etc|al|seq))`
	reABBREV1   = reABBREV1W + `\.`
	reABBREV4   = `(?:[A-Za-z]|` + reABTITLE + `|(?i:vs|alex|wm|jos|cie|a\.k\.a|cf|treas)|` + reACRO + `|` + reABCOMP2 + `)`
	reABBREV2   = reABBREV4 + `\.`
	reACRONYM   = reACRO + `\.`
	reACROAFTER = `A(?i:bout|ccording|dditionally|fter|n|s|t)?|B(?i:ut)|E(?i:arlier)|H(?i:e|er|ere|owever)|I(?i:f|n|t)|L(?i:ast)|M(?i:any|ore|r\.|s\.)|N(?i:ow)|O(?i:nce|ne|ther|ur)|S(?i:he|ince|o|ome|uch)|T(?i:hat|he|hen|here|hese|hey|his)|W(?i:e|hen|hile|hat)|Y(?i:et|ou)`
	rePHONE     = `(?:\([0-9]{2,3}\)[ \x{00A0}]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \x{00A0}])?[0-9]{2,4}[\- \x{00A0}])[0-9]{3,4}[\- \x{00A0}]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}`
	reLDOTS     = `\.{3,5}|(?:\.[ \x{00A0}]){2,4}\.|[\x{0085}\x{2026}]`
	reINSENTP   = `[,;:\x{3001}]`
	reQUOTES    = reAPOS + `|''|[` + "`" + `\x{2018}\x{2019}\x{201A}\x{201B}\x{201C}\x{201D}\x{0091}\x{0092}\x{0093}\x{0094}\x{201E}\x{201F}\x{2039}\x{203A}\x{00AB}\x{00BB}]{1,2}`
	reDBLQUOT   = `"|&(?i:quot);`
	reTBSPEC    = `-(?i:rrb|lrb|rcb|lcb|rsb|lsb)-|(?i:c\.d\.s|pro-|anti-)|(?i:s)(?:&|` + reSPAMP + `)(?i:p-500|ls)|(?i:cap)` + reAPOS + `(?i:n)|(?i:c)` + reAPOS + `(?i:est)`
	reTBSPEC2   = reAPOS + `[0-9][0-9]`
	reMISCSYM   = `[+%&~\^|\\¦\x{00A7}¨\x{00A9}\x{00AC}\x{00AE}¯\x{00B0}-\x{00B3}\x{00B4}-\x{00BA}\x{00D7}\x{00F7}\x{0387}\x{05BE}\x{05C0}\x{05C3}\x{05C6}\x{05F3}\x{05F4}\x{0600}-\x{0603}\x{0606}-\x{060A}\x{060C}\x{0614}\x{061B}\x{061E}\x{066A}\x{066D}\x{0703}-\x{070D}\x{07F6}\x{07F7}\x{07F8}\x{0964}\x{0965}\x{0E4F}\x{1FBD}\x{2016}\x{2017}\x{2020}-\x{2023}\x{2030}-\x{2038}\x{203B}\x{203E}-\x{2042}\x{2044}\x{207A}-\x{207F}\x{208A}-\x{208E}\x{2100}-\x{214F}\x{2190}-\x{21FF}\x{2200}-\x{2BFF}\x{3012}\x{30FB}\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF20}\x{FF3B}-\x{FF40}\x{FF5B}-\x{FF65}]`
)

// ptbRuleSpec is one lexer rule: text, optional trailing context, action.
type ptbRuleSpec struct {
	text, ctx string
	act       ptbAction
	fixed     string
}

// ptbRuleSpecs lists the rules in the order of PTBLexer.flex.
var ptbRuleSpecs = []ptbRuleSpec{
	{text: `(?i:cannot|'twas|dunno)`, act: actAssim3},
	{text: reAPOS + `(?i:tis)|(?i:gonna|gotta|lemme|gimme|wanna|nno)`, act: actAssim2},
	{text: reSGML, act: actNBSP},
	{text: reSPMDASH, act: actDash},
	{text: reSPAMP, act: actAmp},
	{text: reSPPUNC},
	{text: reWORD, ctx: reREDAUX, act: actSoftHyphen},
	{text: reSWORD, ctx: reSREDAUX, act: actSoftHyphen},
	{text: reWORD, act: actSoftHyphen},
	{text: reAPOWORD},
	{text: reAPOWORD2, ctx: `\p{L}`},
	{text: reFULLURL},
	{text: reLIKELYURL},
	{text: reEMAIL},
	{text: reTWITTER},
	{text: reREDAUX, ctx: `[^A-Za-z]`, act: actQuoteRight},
	{text: reSREDAUX, act: actQuoteRight},
	{text: reDATE},
	{text: reNUMBER, act: actSoftHyphen},
	{text: reSUBSUP},
	{text: reFRAC, act: actNBSP},
	{text: reFRAC2, act: actFraction},
	{text: reTBSPEC, act: actAmp},
	{text: reTHING3},
	{text: reDOLSIGN},
	{text: reDOLSIGN2, act: actCurrency},
	{text: reACRONYM, ctx: reSPACES + `(?:` + reACROAFTER + `)` + reSPACE, act: actPeriodAgain},
	{text: reABBREV1, ctx: reSENTEND, act: actPeriodAgain},
	{text: reABBREV1},
	{text: reABBREV2},
	{text: reABBREV4, ctx: reSPACE},
	{text: reACRO, ctx: reSPACENL},
	{text: reTBSPEC2, ctx: reSPACENL},
	{text: reWORD + `\.`, ctx: reINSENTP, act: actSoftHyphen},
	{text: rePHONE, act: actPhone},
	{text: reDBLQUOT, ctx: `[A-Za-z0-9$]`, act: actQuoteLeft},
	{text: reDBLQUOT, act: actQuoteRight},
	{text: `\x7f`, act: actSkip},
	{text: `<<|>>`},
	{text: `<|&(?i:lt);`, act: actFixed, fixed: "<"},
	{text: `>|&(?i:gt);`, act: actFixed, fixed: ">"},
	{text: `\{`, act: actFixed, fixed: "-LCB-"},
	{text: `\}`, act: actFixed, fixed: "-RCB-"},
	{text: `\[`, act: actFixed, fixed: "-LSB-"},
	{text: `\]`, act: actFixed, fixed: "-RSB-"},
	{text: `\(`, act: actFixed, fixed: "-LRB-"},
	{text: `\)`, act: actFixed, fixed: "-RRB-"},
	{text: `-+`, act: actHyphens},
	{text: reLDOTS, act: actEllipsis},
	{text: `@+|#+|_+`},
	{text: `\*+|(?:\\\*){1,3}`},
	{text: reINSENTP},
	{text: `[?!]+`},
	{text: `[.¡¿\x{037E}\x{0589}\x{061F}\x{06D4}\x{0700}-\x{0702}\x{07FA}\x{3002}]`},
	{text: `=`},
	{text: `/`},
	{text: reHTHING + `\.`, ctx: reINSENTP, act: actSoftHyphen},
	{text: reHTHING, act: actSoftHyphen},
	{text: reTHING + `\.`, ctx: reINSENTP},
	{text: reTHING},
	{text: reTHINGA + `\.`, ctx: reINSENTP, act: actAmp},
	{text: reTHINGA, act: actAmp},
	{text: `'`, ctx: `[A-Za-z][^ \t\n\r\x{00A0}]`, act: actQuoteLeft},
	{text: reREDAUX, act: actQuoteRight},
	{text: reQUOTES, act: actQuoteRight},
	{text: reMISCSYM},
	{text: `\x00|` + reSPACES + `|[\x{200B}\x{200E}\x{200F}\x{FEFF}]`, act: actSkip},
	{text: `&(?i:nbsp);`, act: actSkip},
}

// ptbRules compiles the rules once; the result is read-only.
var ptbRules = sync.OnceValue(func() []ptbRule {
	rules := make([]ptbRule, len(ptbRuleSpecs))
	for i, s := range ptbRuleSpecs {
		pat := `^(?:` + s.text + `)`
		if s.ctx != "" {
			pat = `^(` + s.text + `)(?:` + s.ctx + `)`
		}
		re := regexp.MustCompile(pat)
		re.Longest()
		r := ptbRule{re: re, ctx: s.ctx != "", act: s.act, fixed: s.fixed}
		r.first = firstInsts(pat)
		for c := rune(0); c < utf8.RuneSelf; c++ {
			for _, in := range r.first {
				if in.MatchRune(c) {
					r.ascii[c] = true
					break
				}
			}
		}
		rules[i] = r
	}
	return rules
})

// firstInsts returns the instructions that can consume the first rune of a
// match of pat.
func firstInsts(pat string) []*syntax.Inst {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		panic(err) // the patterns are constants; caught by the tests
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		panic(err)
	}
	var out []*syntax.Inst
	seen := make(map[uint32]bool)
	var walk func(pc uint32)
	walk = func(pc uint32) {
		if seen[pc] {
			return
		}
		seen[pc] = true
		in := &prog.Inst[pc]
		switch in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			walk(in.Out)
			walk(in.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			walk(in.Out)
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			out = append(out, in)
		}
	}
	walk(uint32(prog.Start))
	return out
}

// lexLine appends the tokens of w[:end] to toks, before lower-casing; w
// may continue past end with the newline and the next line, which only
// trailing contexts see.
// With fast set, plain words, spaces, commas and periods skip the rules.
func lexLine(rules []ptbRule, w string, end int, toks []string, fast bool) []string {
	pos := 0
	for pos < end {
		c := w[pos]
		// Fast path for the common cases; TestPTBFastPathMatchesLexer
		// checks that it gives what the rules give.
		switch {
		case !fast:
		case c == ' ' || c == '\t':
			pos++
			continue
		case isASCIIAlnum(c):
			j := pos + 1
			letters := isASCIILetter(c)
			digits := !letters
			for j < end && isASCIIAlnum(w[j]) {
				if isASCIILetter(w[j]) {
					letters = true
				} else {
					digits = true
				}
				j++
			}
			if plainWordEnd(rules, w, pos, j, end, letters, digits) {
				toks = append(toks, w[pos:j])
				pos = j
				continue
			}
		case c == ',':
			if pos+1 == end || (w[pos+1] < utf8.RuneSelf && !isASCIIDigit(w[pos+1])) {
				toks = append(toks, ",")
				pos++
				continue
			}
		case c == '.':
			if pos+1 == end || (w[pos+1] == ' ' && (pos+2 == end || w[pos+2] != '.')) {
				toks = append(toks, ".")
				pos++
				continue
			}
		}
		var consumed int
		toks, consumed = lexOne(rules, w[pos:], toks)
		pos += max(consumed, 1) // every rule consumes; never loop

	}
	return toks
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isASCIIDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isASCIIAlnum(c byte) bool  { return isASCIILetter(c) || isASCIIDigit(c) }

// plainWordEnd reports whether the maximal ASCII letter/digit run w[pos:j]
// is a token of its own, whatever rule matches it: that is so when the run
// is followed by the end of the line, a space (unless it is all digits and
// a digit follows the space), a comma and a space, or a period and a space
// when the run cannot be an abbreviation. Assimilations (cannot, gonna,
// ...) are split and never plain.
func plainWordEnd(rules []ptbRule, w string, pos, j, end int, letters, digits bool) bool {
	if letters && !digits && isAssimilation(w[pos:j]) {
		return false
	}
	if j == end {
		return true
	}
	switch w[j] {
	case ' ':
		// A number followed by a space and a digit may be a fraction
		// ("5 7/8") or a phone number.
		return letters || j+1 == end || (w[j+1] < utf8.RuneSelf && !isASCIIDigit(w[j+1]))
	case ',':
		return j+1 == end || w[j+1] == ' '
	case '.':
		if j+1 < end && w[j+1] != ' ' {
			return false
		}
		if digits {
			return true
		}
		return !ptbAbbrevWords()[strings.ToLower(w[pos:j])]
	}
	return false
}

// ptbAbbrevWords holds, lower-cased, every word of letters that the
// abbreviation rules (ABBREV1, ABBREV2) could keep whole with its period, in
// any letter case. It is derived from the rules' regular expressions.
var ptbAbbrevWords = sync.OnceValue(func() map[string]bool {
	re, err := syntax.Parse(reABBREV1W+`|`+reABBREV4, syntax.Perl)
	if err != nil {
		panic(err) // constant pattern; caught by the tests
	}
	set := map[string]bool{}
	for _, w := range wordsOf(re.Simplify(), 12) {
		set[strings.ToLower(w)] = true
	}
	return set
})

// wordsOf lists the strings of at most max runes without a period in the
// language of re, for the finite, literal-heavy patterns of the
// abbreviation rules. Character classes are expanded rune by rune.
func wordsOf(re *syntax.Regexp, max int) []string {
	prune := func(ws []string) []string {
		out := ws[:0]
		for _, w := range ws {
			if utf8.RuneCountInString(w) <= max && !strings.Contains(w, ".") {
				out = append(out, w)
			}
		}
		return out
	}
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return prune([]string{strings.ToLower(string(re.Rune))})
		}
		return prune([]string{string(re.Rune)})
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1] && len(out) < 1000; r++ {
				out = append(out, string(r))
			}
		}
		return prune(out)
	case syntax.OpCapture:
		return wordsOf(re.Sub[0], max)
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			out = append(out, wordsOf(sub, max)...)
		}
		return out
	case syntax.OpQuest:
		return append([]string{""}, wordsOf(re.Sub[0], max)...)
	case syntax.OpPlus, syntax.OpStar:
		one := wordsOf(re.Sub[0], max)
		out := append([]string(nil), one...)
		if re.Op == syntax.OpStar {
			out = append(out, "")
		}
		for layer := one; len(layer) > 0; {
			var next []string
			for _, a := range layer {
				for _, b := range one {
					if b != "" {
						next = append(next, a+b)
					}
				}
			}
			layer = prune(next)
			out = append(out, layer...)
		}
		return out
	case syntax.OpConcat:
		acc := []string{""}
		for _, sub := range re.Sub {
			part := wordsOf(sub, max)
			var next []string
			for _, a := range acc {
				for _, b := range part {
					next = append(next, a+b)
				}
			}
			acc = prune(next)
		}
		return acc
	}
	// Anything else (anchors, any-character) does not occur in these rules.
	panic("wordsOf: unexpected regexp op " + re.Op.String())
}

// isAssimilation reports whether a word is one the assimilation rules split.
func isAssimilation(word string) bool {
	switch len(word) {
	case 3:
		return strings.EqualFold(word, "nno")
	case 5:
		for _, a := range [...]string{"dunno", "gonna", "gotta", "lemme", "gimme", "wanna"} {
			if strings.EqualFold(word, a) {
				return true
			}
		}
	case 6:
		return strings.EqualFold(word, "cannot")
	}
	return false
}

// lexOne runs the lexer rules at the start of s and appends the token(s)
// of the winning rule; it returns how many bytes it consumed (never 0).
func lexOne(rules []ptbRule, s string, toks []string) ([]string, int) {
	first, size := utf8.DecodeRuneInString(s)
	best, bestLen, bestText := -1, 0, 0
	for i := range rules {
		r := &rules[i]
		if !r.canStart(first) {
			continue
		}
		loc := r.re.FindStringSubmatchIndex(s)
		if loc == nil || loc[1] <= bestLen {
			continue
		}
		best, bestLen, bestText = i, loc[1], loc[1]
		if r.ctx {
			bestText = loc[3]
		}
	}
	if best < 0 {
		// Untokenizable character: deleted (untokenizable=firstDelete).
		return toks, size
	}
	r := &rules[best]
	text := s[:bestText]
	switch r.act {
	case actSkip:
		return toks, bestText
	case actAssim3, actAssim2:
		n := 3
		if r.act == actAssim2 {
			n = 2
		}
		text = pushBack(text, n)
		return append(toks, text), len(text)
	case actPeriodAgain:
		// The token keeps its period, and the period is read again.
		return append(toks, text), len(text) - 1
	}
	return append(toks, ptbNormalize(r, text)), bestText
}

// pushBack drops the last n characters (UTF-16 units in Java; the
// assimilation rules only match ASCII and apostrophes, all single units).
func pushBack(s string, n int) string {
	for ; n > 0 && s != ""; n-- {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

var (
	fractionReplacer = strings.NewReplacer("\u00BC", "1/4", "\u00BD", "1/2", "\u00BE", "3/4", "\u2153", "1/3")
	currencyReplacer = strings.NewReplacer("\u00A2", "cents", "\u00A3", "#", "\u0080", "$", "\u00A4", "$", "\u20A0", "$", "\u20AC", "$")
	phoneReplacer    = strings.NewReplacer(" ", "\u00A0", "(", "-LRB-", ")", "-RRB-")
)

// ptbNormalize applies a rule's action to its matched text.
func ptbNormalize(r *ptbRule, text string) string {
	switch r.act {
	case actNBSP:
		return strings.ReplaceAll(text, " ", "\u00A0")
	case actDash:
		return "--"
	case actAmp:
		return normalizeAmp(text)
	case actSoftHyphen:
		return removeSoftHyphens(text)
	case actQuoteRight:
		return latexQuotes(text, false)
	case actQuoteLeft:
		return latexQuotes(text, true)
	case actFraction:
		return fractionReplacer.Replace(text)
	case actCurrency:
		return currencyReplacer.Replace(text)
	case actPhone:
		return phoneReplacer.Replace(text)
	case actHyphens:
		if n := len(text); n >= 3 && n <= 4 {
			return "--"
		}
		return text
	case actEllipsis:
		return "..."
	case actFixed:
		return r.fixed
	}
	return text
}

// normalizeAmp replaces &amp; (any case) by &.
func normalizeAmp(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '&' && i+5 <= len(s) && strings.EqualFold(s[i:i+5], "&amp;") {
			b.WriteByte('&')
			i += 4
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeSoftHyphens deletes U+00AD; a token of soft hyphens only becomes "-".
func removeSoftHyphens(s string) string {
	if !strings.Contains(s, "\u00AD") {
		return s
	}
	s = strings.ReplaceAll(s, "\u00AD", "")
	if s == "" {
		return "-"
	}
	return s
}

var (
	latexLeft  = strings.NewReplacer("&apos;", "`", "'", "`", "\"", "``", "&quot;", "``")
	latexRight = strings.NewReplacer("&apos;", "'", "'", "'", "\"", "''", "&quot;", "''")
	latexUni   = strings.NewReplacer(
		"\u0091", "`", "\u2018", "`", "\u201B", "`", "\u2039", "`",
		"\u0092", "'", "\u2019", "'", "\u203A", "'",
		"\u0093", "``", "\u201C", "``", "\u00AB", "``",
		"\u0094", "''", "\u201D", "''", "\u00BB", "''")
)

// latexQuotes is PTBLexer's latexQuotes normalisation.
func latexQuotes(s string, probablyLeft bool) string {
	if probablyLeft {
		s = latexLeft.Replace(s)
	} else {
		s = latexRight.Replace(s)
	}
	return latexUni.Replace(s)
}

// writeJavaLower writes javaLower(s) to b.
func writeJavaLower(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			b.WriteString(javaLower(s))
			return
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// javaLower is Java's String.toLowerCase(Locale.ENGLISH).
func javaLower(s string) string {
	ascii := true
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if ascii {
		if !upper {
			return s
		}
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case '\u0130': // İ lower-cases to i + combining dot above
			b.WriteString("i\u0307")
		case '\u03A3': // Σ: final sigma at the end of a word
			if finalSigma(rs, i) {
				b.WriteRune('\u03C2')
			} else {
				b.WriteRune('\u03C3')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func isCased(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }

func isCaseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || r == '\'' || r == '.' || r == ':' || r == '\u2019'
}

// finalSigma is Unicode's Final_Sigma condition as Java applies it.
func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		before = isCased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		return !isCased(rs[j])
	}
	return true
}
