// debounce.js
'use strict';

export function debounce(fn, ms = 250) {
  let timer = null;
  return function (...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), ms);
  };
}

const users = [
  { id: 1, name: 'Ada',   tags: ['math', "code"] },
  { id: 22, name: 'Grace', tags: [] },
  { id: 333, name: `Linus`, tags: null },
];

for (const { id, name } of users) {
  if (id % 2 === 0 && name?.length > 3) console.log(`${id}: ${name}`);
}
const re = /^\s*(\d{1,3})[-.](\w+)$/giu;
