/// The page's only style sheet, inline so the first response carries everything: system fonts, the browser's
/// black on white (contrast 7:1 or more everywhere, WCAG AAA), large tap targets, logical properties so right to
/// left needs no rules of its own. Every byte here is a byte less for the neighbours' posts. Each post paints only
/// inside its own box (`contain: paint`): marks stacked above or below a line cannot cover the forms or other posts.
enum InfoPageStyle {
    static let css = """
        body{margin:0 auto;max-width:40em;padding:0 .8em 2em;font:1.05em/1.5 system-ui,sans-serif}\
        h1{font-size:1.4em;margin:.3em 0 0}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:2px solid}\
        h3{font-size:1em;margin:0}nav a{display:inline-block;padding:.4em .5em}[aria-current]{font-weight:bold}\
        .m{color:#444;font-size:.9em}.b{background:#a4000f;color:#fff;padding:.6em .8em}.b h2{border:0;margin:0}\
        .n{padding:.6em .8em;margin:.6em 0;border-inline-start:.4em solid #1b5e20;background:#eef7ee}\
        .e{border-color:#a4000f;background:#fdecea}ul{list-style:none;padding:0;margin:0}\
        li,td,th{padding:.4em 0;border-bottom:1px solid #ccc}li{contain:paint}th{text-align:start;font-weight:normal}\
        table{border-collapse:collapse;width:100%}article{border-inline-start:.4em solid #b35c00;padding:0 .7em;margin:.8em 0}\
        .x{border-color:#a4000f}.t{white-space:pre-line;overflow-wrap:anywhere;margin:.2em 0}\
        details{border:2px solid;margin:.6em 0;padding:0 .7em}summary{font-weight:bold;padding:.7em 0}\
        label{display:block;font-weight:bold;margin-top:.6em}\
        input,select,textarea{font:inherit;width:100%;box-sizing:border-box;padding:.4em;border:2px solid}\
        button{font:inherit;margin:.8em 0;padding:.5em 1.4em;border:0;background:#111;color:#fff}
        """
}
