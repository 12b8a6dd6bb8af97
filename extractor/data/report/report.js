
(function(){
var d=document,conf=d.getElementById('f-conf'),out=d.getElementById('f-conf-v'),
    iv=d.getElementById('f-iv'),q=d.getElementById('f-code');
d.getElementById('filters').hidden=false;
function apply(){
  var c=parseFloat(conf.value),v=iv.value,s=q.value.trim().toLowerCase();
  out.textContent=c.toFixed(2);
  d.querySelectorAll('[data-score]').forEach(function(e){
    var other=v&&e.dataset.interview&&e.dataset.interview!==v;
    e.classList.toggle('off',parseFloat(e.dataset.score)<c||!!other);});
  d.querySelectorAll('article.category').forEach(function(a){
    a.classList.toggle('off',!!s&&a.dataset.name.indexOf(s)<0);
    var n=a.querySelectorAll('details.quote:not(.off)').length,el=a.querySelector('.shown');
    if(el)el.textContent=(c>0||v)?' \u00b7 '+n+' shown with the filters':'';});
  d.querySelectorAll('section.transcript').forEach(function(t){
    t.classList.toggle('off',!!v&&t.dataset.interview!==v);});
}
[conf,iv,q].forEach(function(e){e.addEventListener('input',apply);});
d.querySelectorAll('table.sortable').forEach(function(tb){
  tb.querySelectorAll('thead th').forEach(function(th){
    th.title='click to sort';
    th.addEventListener('click',function(){
      var i=th.cellIndex,body=tb.tBodies[0],rows=Array.prototype.slice.call(body.rows),
          dir=th.dataset.dir==='desc'?1:-1;th.dataset.dir=dir===1?'asc':'desc';
      function key(r){var t=(r.cells[i]||{}).textContent||'',x=parseFloat(t);return isNaN(x)?(t?t.toLowerCase():''):x;}
      rows.sort(function(a,b){var x=key(a),y=key(b);if(x===''&&y!=='')return 1;if(y===''&&x!=='')return -1;
        if(typeof x==='number'&&typeof y!=='number')return -1;if(typeof y==='number'&&typeof x!=='number')return 1;
        return x<y?-dir:x>y?dir:0;});
      rows.forEach(function(r){body.appendChild(r);});});});});
})();
